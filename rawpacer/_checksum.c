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
 * And compose_udp(...): a fan-out's frames composed into rows, UDP checksums included, in one call
 * (rawpacer/writers/_batch.py, numpy otherwise).
 *
 * And datagram_hash(buffer, /) -> int: rawpacer's 64-bit datagram hash (_dghash.h), by which a
 * replay's planner and recorder know each datagram (rawpacer/readers/replaymatch.py, the twin).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_dghash.h"
#include "_pymodule.h"
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

/* The folded sum of the buffer's big-endian words plus `initial`: what ones_sum returns. */
static uint32_t be_sum(const unsigned char *p, Py_ssize_t n, unsigned long long initial) {
    uint32_t s = native_sum(p, n);
#if PY_LITTLE_ENDIAN
    s = ((s & 0xFF) << 8) | (s >> 8);
#endif
    s += fold(initial);
    return (s & 0xFFFF) + (s >> 16);
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
    s = be_sum((const unsigned char *)view.buf, view.len, initial);
    PyBuffer_Release(&view);
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

/* compose_udp(rows, headers, bases, messages, start, /): frame i of a fan-out into row i of the
 * writable C-contiguous `rows` (span rows of header_len + payload_len bytes): header row start+i of
 * `headers` (header_len bytes each), the first payload_len bytes of messages[start+i], and the UDP
 * checksum (at `checksum_at` of the row) from that payload's sum and the port's fixed part
 * bases[start+i] (uint32 each): the checksum RFC 768 asks for, a computed 0 sent as 0xFFFF. The
 * numpy twin is rawpacer/writers/_batch.py's. */
static PyObject *compose_udp(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "compose_udp(rows, headers, bases, messages, start, payload_len, checksum_at, /) takes 7 arguments");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[4]), payload_len = PyLong_AsSsize_t(args[5]);
    Py_ssize_t checksum_at = PyLong_AsSsize_t(args[6]);
    if (PyErr_Occurred()) return NULL;
    PyObject *messages = PySequence_Fast(args[3], "compose_udp: messages must be a sequence");
    if (messages == NULL) return NULL;
    Py_buffer rows = {0}, headers = {0}, bases = {0};
    PyObject *result = NULL;
    if (PyObject_GetBuffer(args[0], &rows, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (PyObject_GetBuffer(args[1], &headers, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (PyObject_GetBuffer(args[2], &bases, PyBUF_C_CONTIGUOUS) < 0) goto done;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(messages), n_bases = bases.len / (Py_ssize_t)sizeof(uint32_t);
    if (start < 0 || payload_len < 0 || n_bases == 0 || headers.len % n_bases) {
        PyErr_SetString(PyExc_ValueError, "compose_udp: bad start, payload length or header table");
        goto done;
    }
    Py_ssize_t head = headers.len / n_bases, frame_len = head + payload_len;
    Py_ssize_t span = frame_len ? rows.len / frame_len : 0;
    if (span * frame_len != rows.len || start + span > count || start + span > n_bases || checksum_at < 0
        || checksum_at + 2 > head) {
        PyErr_Format(PyExc_ValueError, "compose_udp: %zd bytes of rows do not hold frames of %zd bytes for messages "
                     "%zd.. of %zd, or the checksum at %zd is not in the %zd-byte header",
                     rows.len, frame_len, start, count, checksum_at, head);
        goto done;
    }
    const uint32_t *base = (const uint32_t *)bases.buf;
    for (Py_ssize_t i = 0; i < span; i++) {
        Py_buffer message;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(messages, start + i), &message, PyBUF_SIMPLE) < 0) goto done;
        if (message.len < payload_len) {
            PyErr_Format(PyExc_ValueError, "compose_udp: message %zd has %zd bytes, fewer than %zd",
                         start + i, message.len, payload_len);
            PyBuffer_Release(&message);
            goto done;
        }
        unsigned char *row = (unsigned char *)rows.buf + i * frame_len;
        memcpy(row, (const unsigned char *)headers.buf + (start + i) * head, (size_t)head);
        memcpy(row + head, message.buf, (size_t)payload_len);
        uint32_t sum = be_sum(row + head, payload_len, base[start + i]) ^ 0xFFFF;
        PyBuffer_Release(&message);
        if (sum == 0) sum = 0xFFFF;
        row[checksum_at] = (unsigned char)(sum >> 8);
        row[checksum_at + 1] = (unsigned char)sum;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    if (rows.obj) PyBuffer_Release(&rows);
    if (headers.obj) PyBuffer_Release(&headers);
    if (bases.obj) PyBuffer_Release(&bases);
    Py_DECREF(messages);
    return result;
}

static PyObject *datagram_hash(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint64_t h = dg_hash((const unsigned char *)view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

static PyMethodDef methods[] = {
    FASTCALL("compose_udp", compose_udp,
             "compose_udp(rows, headers, bases, messages, start, payload_len, checksum_at, /): a fan-out's UDP frames "
             "into rows."),
    {"datagram_hash", (PyCFunction)datagram_hash, METH_O,
     "datagram_hash(buffer, /) -> int: rawpacer's 64-bit datagram hash (_dghash.h)."},
    FASTCALL("ones_sum", ones_sum,
             "ones_sum(buffer, initial=0, /) -> int: folded RFC 1071 sum of buffer's big-endian words plus initial."),
    FASTCALL("stamp_sequence", stamp_sequence,
             "stamp_sequence(buffer, stride, offset, sequence, /): the sequence field at offset of every stride-byte "
             "row."),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = MODULE_DEF(
    "rawpacer._checksum",
    "Internet ones'-complement sum over any buffer, no copy (optional speed-up of rawpacer.headers.checksum).",
    methods);

PyMODINIT_FUNC PyInit__checksum(void) {
    return PyModule_Create(&module);
}
