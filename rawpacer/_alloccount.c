/* rawpacer._alloccount: counting wrappers around CPython's three allocator domains (raw, mem, object).
 * Installed only for the allocation pass of `rawpacer compare`; each wrapper bumps two
 * counters and calls the allocator it replaced, so memory is still owned by that allocator.
 * install() / uninstall() / read() -> (allocations, bytes) since the module was loaded. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_pymodule.h"

static PyMemAllocatorEx previous[3];
static unsigned long long count, bytes;
static int installed;
/* pymalloc serves large requests from the raw domain: count only the outermost call. */
static __thread int depth;

static void note(size_t size)
{
    if (depth)
        return;
    __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&bytes, (unsigned long long)size, __ATOMIC_RELAXED);
}

static void *counting_malloc(void *ctx, size_t size)
{
    PyMemAllocatorEx *prev = ctx;
    note(size);
    depth++;
    void *out = prev->malloc(prev->ctx, size);
    depth--;
    return out;
}

static void *counting_calloc(void *ctx, size_t nelem, size_t elsize)
{
    PyMemAllocatorEx *prev = ctx;
    note(nelem * elsize);
    depth++;
    void *out = prev->calloc(prev->ctx, nelem, elsize);
    depth--;
    return out;
}

static void *counting_realloc(void *ctx, void *ptr, size_t size)
{
    PyMemAllocatorEx *prev = ctx;
    note(size);
    depth++;
    void *out = prev->realloc(prev->ctx, ptr, size);
    depth--;
    return out;
}

static void counting_free(void *ctx, void *ptr)
{
    PyMemAllocatorEx *prev = ctx;
    prev->free(prev->ctx, ptr);
}

static PyObject *install(PyObject *module, PyObject *unused)
{
    if (installed)
        Py_RETURN_FALSE;
    for (int domain = 0; domain < 3; domain++) {
        PyMem_GetAllocator((PyMemAllocatorDomain)domain, &previous[domain]);
        PyMemAllocatorEx hook = {&previous[domain], counting_malloc, counting_calloc,
                                 counting_realloc, counting_free};
        PyMem_SetAllocator((PyMemAllocatorDomain)domain, &hook);
    }
    installed = 1;
    Py_RETURN_TRUE;
}

static PyObject *uninstall(PyObject *module, PyObject *unused)
{
    if (!installed)
        Py_RETURN_FALSE;
    for (int domain = 0; domain < 3; domain++)
        PyMem_SetAllocator((PyMemAllocatorDomain)domain, &previous[domain]);
    installed = 0;
    Py_RETURN_TRUE;
}

static PyObject *read_counts(PyObject *module, PyObject *unused)
{
    return Py_BuildValue("(KK)", __atomic_load_n(&count, __ATOMIC_RELAXED),
                         __atomic_load_n(&bytes, __ATOMIC_RELAXED));
}

static PyMethodDef methods[] = {
    {"install", install, METH_NOARGS, "install() -> bool: start counting every allocation."},
    {"uninstall", uninstall, METH_NOARGS, "uninstall() -> bool: put the previous allocators back."},
    {"read", read_counts, METH_NOARGS, "read() -> (allocations, bytes) counted so far."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = MODULE_DEF("rawpacer._alloccount", NULL, methods);

PyMODINIT_FUNC PyInit__alloccount(void)
{
    return PyModule_Create(&module);
}
