/* rawpacer._checksum: the Internet (RFC 1071) ones'-complement sum of a buffer, without a copy.
 *
 * One function, ones_sum(buffer, initial=0, /) -> int in 0..0xFFFF: the folded ones'-complement
 * sum of the buffer read as big-endian 16-bit words (odd length: padded with one zero byte), plus
 * `initial`. The result is 0 only when `initial` and every byte are 0. The checksum of a header is
 * `~ones_sum(...) & 0xFFFF`. rawpacer/headers/checksum.py holds the pure-Python twin.
 *
 * And stamp_sequence(buffer, stride, offset, sequence, /): a stream's sequence field (_sequence.h,
 * checksum-neutral) written at `offset` of every `stride`-byte row of a writable buffer, for a whole
 * fan-out in one call with no Python object made (rawpacer/headers/sequence.py, numpy otherwise).
 *
 * And datagram_hash(buffer, /) -> int: rawpacer's 64-bit datagram hash (_dghash.h), by which a
 * replay's planner and recorder know each datagram (rawpacer/readers/replaymatch.py, the twin).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_dghash.h"
#include "_sequence.h"

/* Fold a non-negative sum to 0..0xFFFF keeping its residue mod 0xFFFF (0 only for 0). */
static uint32_t fold(uint64_t s) {
    return s == 0 ? 0 : (uint32_t)((s - 1) % 0xFFFF) + 1;
}

/* Sum of the buffer's native-order 16-bit words, folded (byte order is fixed up by the caller). */
static uint32_t native_sum(const unsigned char *p, Py_ssize_t n) {
    uint64_t acc = 0;
    uint64_t w;
    while (n >= 32) {
        uint64_t a, b, c, d;
        memcpy(&a, p, 8); memcpy(&b, p + 8, 8); memcpy(&c, p + 16, 8); memcpy(&d, p + 24, 8);
        acc += (a & 0xFFFFFFFFu) + (a >> 32) + (b & 0xFFFFFFFFu) + (b >> 32)
             + (c & 0xFFFFFFFFu) + (c >> 32) + (d & 0xFFFFFFFFu) + (d >> 32);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        memcpy(&w, p, 8);
        acc += (w & 0xFFFFFFFFu) + (w >> 32);
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        unsigned char tail[8] = {0};
        memcpy(tail, p, (size_t)n);
        memcpy(&w, tail, 8);
        acc += (w & 0xFFFFFFFFu) + (w >> 32);
    }
    return fold(acc);
}

static PyObject *ones_sum(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer view;
    unsigned long long initial = 0;
    uint32_t s;

    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "ones_sum(buffer, initial=0, /) takes 1 or 2 arguments");
        return NULL;
    }
    if (nargs == 2) {
        initial = PyLong_AsUnsignedLongLong(args[1]);
        if (initial == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    s = native_sum((const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
#if PY_LITTLE_ENDIAN
    s = ((s & 0xFF) << 8) | (s >> 8);
#endif
    s += fold(initial);
    s = (s & 0xFFFF) + (s >> 16);
    return PyLong_FromUnsignedLong(s);
}

static PyObject *stamp_sequence(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "stamp_sequence(buffer, stride, offset, sequence, /) takes 4 arguments");
        return NULL;
    }
    Py_ssize_t stride = PyLong_AsSsize_t(args[1]), offset = PyLong_AsSsize_t(args[2]);
    unsigned long long sequence = PyLong_AsUnsignedLongLong(args[3]);
    if (PyErr_Occurred()) return NULL;
    if (stride < 1 || offset < 0 || offset + SEQUENCE_BYTES > stride || sequence >> 48) {
        PyErr_Format(PyExc_ValueError, "stamp_sequence: %d bytes at %zd do not fit %zd-byte rows, or sequence %llu "
                     "exceeds 48 bits", SEQUENCE_BYTES, offset, stride, sequence);
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE) < 0) return NULL;
    unsigned char field[SEQUENCE_BYTES];
    sequence_put(field, (uint64_t)sequence);
    unsigned char *row = (unsigned char *)view.buf + offset;
    for (Py_ssize_t left = view.len / stride; left > 0; left--, row += stride) memcpy(row, field, SEQUENCE_BYTES);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *datagram_hash(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint64_t h = dg_hash((const unsigned char *)view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

static PyMethodDef methods[] = {
    {"datagram_hash", (PyCFunction)datagram_hash, METH_O,
     "datagram_hash(buffer, /) -> int: rawpacer's 64-bit datagram hash (_dghash.h)."},
    {"ones_sum", (PyCFunction)(void (*)(void))ones_sum, METH_FASTCALL,
     "ones_sum(buffer, initial=0, /) -> int: folded RFC 1071 sum of buffer's big-endian words plus initial."},
    {"stamp_sequence", (PyCFunction)(void (*)(void))stamp_sequence, METH_FASTCALL,
     "stamp_sequence(buffer, stride, offset, sequence, /): the sequence field at offset of every stride-byte row."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "rawpacer._checksum",
    "Internet ones'-complement sum over any buffer, no copy (optional speed-up of rawpacer.headers.checksum).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__checksum(void) {
    return PyModule_Create(&module);
}
