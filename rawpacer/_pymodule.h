/* What every rawpacer C extension's Python face does alike, written once: a type's opening fields
 * and life cycle, the table entries CPython makes verbose (read-only int64 members, getters,
 * METH_FASTCALL methods), a dealloc's frees, the module's definition, and PyInit's body (make the
 * module, add its int constants and its types, drop the module on any failure). Each extension
 * then states only its own names, docstrings, constants and types. */
#ifndef RAWPACER_PYMODULE_H
#define RAWPACER_PYMODULE_H
#include <Python.h>
#include <structmember.h>

/* A plain (no GC) type over struct ``type`` with these flags: what every extension type opens with. */
#define TYPE_HEAD_FLAGS(qualname, type, flags, doc) \
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = qualname, .tp_basicsize = sizeof(type), .tp_flags = flags, \
    .tp_doc = doc
/* The same, no subclasses. */
#define TYPE_HEAD(qualname, type, doc) TYPE_HEAD_FLAGS(qualname, type, Py_TPFLAGS_DEFAULT, doc)
/* A type Python calls to make one: zeroed by PyType_GenericNew, then init(self, args, kwds) fills it;
 * dealloc(self) frees what it holds and then the object. */
#define LIFECYCLE(init, dealloc) \
    .tp_new = PyType_GenericNew, .tp_init = (initproc)(init), .tp_dealloc = (destructor)(dealloc)

/* A read-only int64 field of struct ``type`` as a Python attribute (a PyMemberDef entry). */
#define RO_INT64(type, name, field, doc) {name, T_LONGLONG, offsetof(type, field), READONLY, doc}
/* A read-only attribute computed by fn(self, closure) (a PyGetSetDef entry). */
#define GETTER(name, fn, doc) {name, (getter)(fn), NULL, doc, NULL}

/* A PyMethodDef entry for fn(self, args, nargs), a METH_FASTCALL function (cast through void (*)(void),
 * as CPython's own tables do, since its signature is not PyCFunction's). */
#define FASTCALL(name, fn, doc) {name, (PyCFunction)(void (*)(void))(fn), METH_FASTCALL, doc}

/* Free each of the blocks with release (PyMem_Free or PyMem_RawFree, whichever allocated them; NULL is
 * fine): what a dealloc does with the arrays its object holds. */
static inline void free_blocks(void (*release)(void *), void *const *blocks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        release(blocks[i]);
}
#define FREE_ALL(release, ...) \
    free_blocks(release, (void *[]){__VA_ARGS__}, sizeof((void *[]){__VA_ARGS__}) / sizeof(void *))

/* A module's definition: its name, docstring (or NULL) and functions (a PyMethodDef table, or NULL);
 * size -1, its state being the extension's C globals (one interpreter). */
#define MODULE_DEF(name, doc, methods) {PyModuleDef_HEAD_INIT, name, doc, -1, methods}

/* An int constant the module exports under its C name; a table of them ends with {NULL, 0}. */
typedef struct {
    const char *name;
    long value;
} ModuleInt;
#define MODULE_INT(name) {#name, name}

/* The module of ``def`` with the int constants of ``ints`` and the types of ``types`` (NULL-ended;
 * either may be NULL), each type readied and added under its tp_name's last part
 * (PyModule_AddType). A new reference, or NULL with the error set and nothing leaked. */
static inline PyObject *module_create(PyModuleDef *def, const ModuleInt *ints, PyTypeObject *const *types)
{
    PyObject *m = PyModule_Create(def);
    if (!m)
        return NULL;
    for (; ints && ints->name; ints++)
        if (PyModule_AddIntConstant(m, ints->name, ints->value) < 0)
            goto fail;
    for (; types && *types; types++)
        if (PyModule_AddType(m, *types) < 0)
            goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}

#endif
