/* rawpacer.engine._engine: one transmit engine, "frames plus a ring".
 *
 * Pool(data, offsets, lengths, addresses=None, /)
 *     Frames in one buffer: frame j is data[offsets[j] : offsets[j] + lengths[j]]; or, with offsets
 *     and lengths None, data is a sequence of buffers, frame j the j-th, pinned where it is (no
 *     copy). Frame k of a stream is frame k % n. addresses: n sockaddrs of one length back to back
 *     (sendto()'s), or None.
 * Ring(memory, producer_at, consumer_at, flags_at, entries_at, size, width, /)
 *     A ring in libxdp's shape over any writable memory (an AF_XDP mmap, or a test's bytearray):
 *     reserve(n) -> (count, index), submit(n), peek(n) -> (count, index), release(n), and the
 *     entries as descriptors (descriptor(i), set_descriptor(i, addr, length, options)) or u64
 *     addresses (address(i), set_address(i, addr)). _ring.h holds the ring itself.
 * mmsg(fd, /), tpacket(fd, ring, frame_size, frame_nr, /),
 * xdp(fd, umem, chunk_size, tx, completion, need_wakeup, max_descs, /) -> Engine
 *     The three back ends: sendmmsg() batches (to the pool's addresses, or on a connected or bound
 *     socket); a TPACKET_V2 TX ring (each frame copied into its slot, TP_STATUS_SEND_REQUEST, a
 *     send() kicks); AF_XDP (each frame copied into UMEM chunks taken from a free list, one
 *     descriptor a chunk with XDP_PKT_CONTD on all but a frame's last, a sendto(MSG_DONTWAIT)
 *     kicks, completions give the chunks back). fd -1 (xdp only): no kernel, for tests; a send
 *     then stops, short, where it would wait.
 * Engine.send(pool, first, count, batch, core=None, sequence=None, stamps=None, /) -> int
 *     Frames first .. first+count-1 of the pool's stream: unpaced, `batch` at a time (each batch
 *     handed over and kicked before the next), or paced by `core` (a rawpacer._pace.Core: its
 *     departures, `core.burst` frames each, the loop in _pacecore.h). sequence=(at, first_seq):
 *     frame k carries first_seq + k // n - first // n at byte `at` (_sequence.h), stamped into the
 *     pool as it leaves. stamps: up to MAX_STAMPS tuples (at, width, mask, random, low_high, low,
 *     last, key, ip_sum, udp_sum) (rawpacer.traffic.stamp.FieldStamp): frame k carries its value of
 *     each field, written after the frame is copied into its ring slot or UMEM chunk (into the pool
 *     itself for sendmmsg, which sends from there), checksums fixed incrementally. Returns the frames sent: handed over, less those the driver dropped. The GIL is released; a signal's handler
 *     runs every 10 ms. A wait with no progress for STALL_MS raises TimeoutError; a failed send,
 *     OSError. Attributes: kicks, dropped (xdp: EBUSY, the driver dropped a frame it took),
 *     completed (xdp), stray (xdp: completions of chunks it had not sent, ignored), in_flight
 *     (xdp chunks), sent (frames handed over, every call).
 *     close() releases the memory it holds (the mmaps can then be unmapped).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <poll.h>
#include <sys/socket.h>

#include "../_pacecore.h"
#include "../_pymodule.h"
#include "../_sequence.h"
#include "_ring.h"

#define STALL_MS 1000 /* the longest wait without progress before the engine gives up, loudly */
#define POLL_MS 1
#define TPACKET_DATA 32 /* TPACKET2_HDRLEN - sizeof(struct sockaddr_ll): where a TX frame starts */
#define TP_STATUS_SEND_REQUEST 1
#define TP_STATUS_SENDING 2
#define TP_STATUS_WRONG_FORMAT 4
#define TP_BUSY (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING | TP_STATUS_WRONG_FORMAT)
#define XDP_PKT_CONTD 1
#define XDP_RING_NEED_WAKEUP 1
#define DESC_BYTES 16 /* struct xdp_desc: u64 addr, u32 len, u32 options */
#define MAX_STAMPS 8    /* fields stamped per frame: --vary has four that are stamped */
#define SPLITMIX_GAMMA 0x9E3779B97F4A7C15ULL

/* ---- Field stamps: --vary's per-frame values (rawpacer.traffic.vary and .stamp are the reference) ---- */

typedef struct {
    Py_ssize_t at, ip_sum, udp_sum; /* the field; the IPv4 header and UDP checksums to fix (-1: none) */
    int width, random;              /* 2, 4 or 16 (an IPv6 address) bytes; inc or random */
    uint32_t mask;                  /* the field's bits in its 2 or 4 bytes (IEEE 802.1Q's VID, RFC 8200's flow label) */
    uint64_t low_high, low, last, key; /* the range's start (an IPv6 address's high half), span - 1, PRNG key */
} Stamp;

typedef struct {
    int n;
    Stamp s[MAX_STAMPS];
} Stamps;

/* SplitMix64's output function (Steele, Lea and Flood, OOPSLA 2014). */
static inline uint64_t splitmix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Frame k's offset into the range: k mod span (inc), or SplitMix64's output k + 1 from the key, a
 * counter-based draw, taken to the span by the 128-bit product's high half (Lemire's multiply-shift:
 * a relative bias of at most span / 2^64). */
static inline uint64_t stamp_offset(const Stamp *s, uint64_t k)
{
    if (!s->random)
        return s->last == UINT64_MAX ? k : k % (s->last + 1);
    uint64_t x = splitmix64(s->key + (k + 1) * SPLITMIX_GAMMA);
    return s->last == UINT64_MAX ? x : (uint64_t)(((unsigned __int128)x * (s->last + 1)) >> 64);
}

/* RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for the checksum at c; `delta` is the sum of ~m + m' over
 * the changed 16-bit words. A UDP checksum that comes to 0 is sent as 0xFFFF, its other one's-complement
 * zero: 0 means "no checksum" (RFC 768) and is not allowed over IPv6 (RFC 8200 8.1). */
static inline void checksum_fix(unsigned char *c, uint32_t delta, int udp)
{
    uint32_t total = (~(uint32_t)(c[0] << 8 | c[1]) & 0xFFFF) + delta;
    while (total >> 16)
        total = (total & 0xFFFF) + (total >> 16);
    uint16_t result = (uint16_t)~total;
    if (udp && result == 0)
        result = 0xFFFF;
    c[0] = (unsigned char)(result >> 8);
    c[1] = (unsigned char)result;
}

/* Write each field's value of stream frame k into `frame`, its checksums fixed from what the frame held. */
static void stamps_put(const Stamps *st, unsigned char *frame, uint64_t k)
{
    for (int i = 0; i < st->n; i++) {
        const Stamp *s = &st->s[i];
        unsigned char *f = frame + s->at, value[16];
        uint64_t low = s->low + stamp_offset(s, k);
        if (s->width == 16) { /* an IPv6 address: the low half's carry goes into the high half */
            uint64_t high = s->low_high + (low < s->low);
            for (int b = 0; b < 8; b++) {
                value[b] = (unsigned char)(high >> (56 - 8 * b));
                value[8 + b] = (unsigned char)(low >> (56 - 8 * b));
            }
        } else {
            uint32_t old = 0;
            for (int b = 0; b < s->width; b++)
                old = old << 8 | f[b];
            uint32_t now = (old & ~s->mask) | (uint32_t)low;
            for (int b = 0; b < s->width; b++)
                value[b] = (unsigned char)(now >> (8 * (s->width - 1 - b)));
        }
        uint32_t delta = 0;
        for (int w = 0; w < s->width; w += 2) {
            delta += (~(uint32_t)(f[w] << 8 | f[w + 1]) & 0xFFFF) + (uint32_t)(value[w] << 8 | value[w + 1]);
            f[w] = value[w], f[w + 1] = value[w + 1];
        }
        if (s->ip_sum >= 0)
            checksum_fix(frame + s->ip_sum, delta, 0); /* an IPv4 address is in its header's checksum (RFC 791) */
        if (s->udp_sum >= 0)
            checksum_fix(frame + s->udp_sum, delta, 1); /* ... and in UDP's pseudo-header (RFC 768, RFC 8200 8.1) */
    }
}

/* ---- Pool ---- */

typedef struct {
    PyObject_HEAD
    Py_buffer data;
    Py_buffer *pinned; /* frames given one buffer each (offsets None): each one's view */
    int writable;
    Py_ssize_t n;
    int64_t *off, *len;
    unsigned char **at; /* where frame j starts */
    Py_buffer addrs;
    Py_ssize_t addr_len; /* 0: no addresses */
} Pool;

/* Let go of every buffer the pool holds (it then has no frames). */
static void pool_free(Pool *p)
{
    if (p->data.obj)
        PyBuffer_Release(&p->data);
    for (Py_ssize_t j = 0; p->pinned && j < p->n; j++)
        if (p->pinned[j].obj)
            PyBuffer_Release(&p->pinned[j]);
    if (p->addrs.obj)
        PyBuffer_Release(&p->addrs);
    FREE_ALL(PyMem_Free, p->pinned, p->off, p->len, p->at);
    p->pinned = NULL, p->off = NULL, p->len = NULL, p->at = NULL;
    p->n = 0, p->addr_len = 0;
}

static void pool_dealloc(Pool *p)
{
    pool_free(p);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyObject *pool_release(Pool *p, PyObject *unused)
{
    pool_free(p);
    Py_RETURN_NONE;
}

static PyMethodDef pool_methods[] = {
    {"release", (PyCFunction)pool_release, METH_NOARGS,
     "release(): let go of the buffers now (a pool over someone's memory must not outlive it)."},
    {NULL, NULL, 0, NULL},
};

/* Frames given as a sequence of buffers, each pinned where it is (writable if all of them are). */
static int pool_pin(Pool *p, PyObject *frames)
{
    PyObject *fast = PySequence_Fast(frames, "frames must be a sequence of buffers");
    if (!fast)
        return -1;
    p->n = PySequence_Fast_GET_SIZE(fast);
    size_t n = (size_t)(p->n ? p->n : 1);
    p->pinned = PyMem_Calloc(n, sizeof(Py_buffer));
    p->len = PyMem_Malloc(n * sizeof(int64_t));
    p->at = PyMem_Malloc(n * sizeof(unsigned char *));
    int rc = -1;
    if (!p->pinned || !p->len || !p->at) {
        PyErr_NoMemory();
        goto done;
    }
    p->writable = 1;
    for (Py_ssize_t j = 0; j < p->n; j++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, j);
        if (p->writable && PyObject_GetBuffer(item, &p->pinned[j], PyBUF_WRITABLE) < 0) {
            PyErr_Clear();
            p->writable = 0;
        }
        if (!p->pinned[j].obj && PyObject_GetBuffer(item, &p->pinned[j], PyBUF_SIMPLE) < 0)
            goto done;
        p->at[j] = p->pinned[j].buf;
        p->len[j] = p->pinned[j].len;
    }
    rc = 0;
done:
    Py_DECREF(fast);
    return rc;
}

static int int64s(PyObject *seq, Py_ssize_t *n, int64_t **out, const char *what)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast)
        return -1;
    *n = PySequence_Fast_GET_SIZE(fast);
    *out = PyMem_Malloc((size_t)(*n ? *n : 1) * sizeof(int64_t));
    if (!*out) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        (*out)[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
        if ((*out)[i] == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

static int pool_init(Pool *p, PyObject *args, PyObject *kwds)
{
    PyObject *data, *offsets, *lengths, *addresses = Py_None;
    if (!PyArg_ParseTuple(args, "OOO|O:Pool", &data, &offsets, &lengths, &addresses))
        return -1;
    if (p->data.obj || p->at) {
        PyErr_SetString(PyExc_TypeError, "Pool is made once");
        return -1;
    }
    if (offsets == Py_None && lengths == Py_None) {
        if (pool_pin(p, data) < 0)
            return -1;
        if (p->n == 0) {
            PyErr_SetString(PyExc_ValueError, "Pool: no frames; give at least one");
            return -1;
        }
        goto addresses;
    }
    p->writable = PyObject_GetBuffer(data, &p->data, PyBUF_WRITABLE) == 0;
    if (!p->writable) {
        PyErr_Clear();
        if (PyObject_GetBuffer(data, &p->data, PyBUF_SIMPLE) < 0)
            return -1;
    }
    Py_ssize_t n_len;
    if (int64s(offsets, &p->n, &p->off, "offsets must be a sequence of ints") < 0 ||
        int64s(lengths, &n_len, &p->len, "lengths must be a sequence of ints") < 0)
        return -1;
    if (p->n == 0 || n_len != p->n) {
        PyErr_Format(PyExc_ValueError, "Pool: %zd offsets and %zd lengths; give one of each per frame, at least one",
                     p->n, n_len);
        return -1;
    }
    for (Py_ssize_t j = 0; j < p->n; j++) {
        if (p->off[j] < 0 || p->len[j] < 0 || p->off[j] + p->len[j] > p->data.len) {
            PyErr_Format(PyExc_ValueError, "Pool: frame %zd (%lld bytes at %lld) is outside the %zd-byte buffer", j,
                         (long long)p->len[j], (long long)p->off[j], p->data.len);
            return -1;
        }
    }
    p->at = PyMem_Malloc((size_t)p->n * sizeof(unsigned char *));
    if (!p->at) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t j = 0; j < p->n; j++)
        p->at[j] = (unsigned char *)p->data.buf + p->off[j];
addresses:
    if (addresses != Py_None) {
        if (PyObject_GetBuffer(addresses, &p->addrs, PyBUF_SIMPLE) < 0)
            return -1;
        if (p->addrs.len % p->n || p->addrs.len == 0) {
            PyErr_Format(PyExc_ValueError, "Pool: %zd address bytes for %zd frames; give one sockaddr per frame",
                         p->addrs.len, p->n);
            return -1;
        }
        p->addr_len = p->addrs.len / p->n;
    }
    return 0;
}

static PyMemberDef pool_members[] = {
    {"frames", T_PYSSIZET, offsetof(Pool, n), READONLY, "How many frames the pool holds."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject PoolType = {
    TYPE_HEAD("rawpacer.engine._engine.Pool", Pool,
              "Frames in one buffer, each an offset and a length (see the module comment)."),
    LIFECYCLE(pool_init, pool_dealloc),
    .tp_methods = pool_methods,
    .tp_members = pool_members,
};

/* ---- Ring: _ring.h's ring over a Python buffer ---- */

typedef struct {
    PyObject_HEAD
    Py_buffer mem;
    XRing r;
    uint32_t width;
} Ring;

static void ring_dealloc(Ring *g)
{
    if (g->mem.obj)
        PyBuffer_Release(&g->mem);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static int ring_init(Ring *g, PyObject *args, PyObject *kwds)
{
    PyObject *mem;
    Py_ssize_t at[4];
    unsigned int size, width;
    if (!PyArg_ParseTuple(args, "OnnnnII:Ring", &mem, &at[0], &at[1], &at[2], &at[3], &size, &width))
        return -1;
    if (g->mem.obj) {
        PyErr_SetString(PyExc_TypeError, "Ring is made once");
        return -1;
    }
    if (PyObject_GetBuffer(mem, &g->mem, PyBUF_WRITABLE) < 0)
        return -1;
    int bad = size == 0 || (size & (size - 1)) || (width != 8 && width != DESC_BYTES);
    for (int k = 0; k < 3; k++)
        bad |= at[k] < 0 || at[k] % 4 || at[k] + 4 > g->mem.len;
    bad |= at[3] < 0 || at[3] % 8 || at[3] + (Py_ssize_t)size * width > g->mem.len;
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "Ring: size a power of two, width 8 or 16, aligned offsets inside the memory");
        return -1;
    }
    unsigned char *base = g->mem.buf;
    g->r.producer = (uint32_t *)(base + at[0]);
    g->r.consumer = (uint32_t *)(base + at[1]);
    g->r.flags = (uint32_t *)(base + at[2]);
    g->r.entries = base + at[3];
    g->r.size = size;
    g->r.mask = size - 1;
    g->width = width;
    return 0;
}

static int ring_count(PyObject *arg, uint32_t *out)
{
    unsigned long v = PyLong_AsUnsignedLong(arg);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* reserve/peek take up to nb entries and say where they start; submit/release hand nb back. */
static PyObject *ring_take(Ring *g, PyObject *arg, uint32_t (*take)(XRing *, uint32_t, uint32_t *))
{
    uint32_t nb, idx = 0;
    if (ring_count(arg, &nb) < 0)
        return NULL;
    nb = take(&g->r, nb, &idx);
    return Py_BuildValue("(II)", nb, idx);
}

static PyObject *ring_give(Ring *g, PyObject *arg, void (*give)(XRing *, uint32_t))
{
    uint32_t nb;
    if (ring_count(arg, &nb) < 0)
        return NULL;
    give(&g->r, nb);
    Py_RETURN_NONE;
}

static PyObject *ring_reserve(Ring *g, PyObject *arg)
{
    return ring_take(g, arg, xring_reserve);
}

static PyObject *ring_submit(Ring *g, PyObject *arg)
{
    return ring_give(g, arg, xring_submit);
}

static PyObject *ring_peek(Ring *g, PyObject *arg)
{
    return ring_take(g, arg, xring_peek);
}

static PyObject *ring_release(Ring *g, PyObject *arg)
{
    return ring_give(g, arg, xring_release);
}

static PyObject *ring_sync(Ring *g, PyObject *arg)
{
    if (PyObject_IsTrue(arg))
        xring_init_prod(&g->r);
    else
        xring_init_cons(&g->r);
    Py_RETURN_NONE;
}

static PyObject *ring_descriptor(Ring *g, PyObject *arg)
{
    uint32_t idx;
    if (ring_count(arg, &idx) < 0)
        return NULL;
    const unsigned char *e = xring_entry(&g->r, idx, g->width);
    uint64_t addr;
    uint32_t len = 0, options = 0;
    memcpy(&addr, e, 8);
    if (g->width == DESC_BYTES) {
        memcpy(&len, e + 8, 4);
        memcpy(&options, e + 12, 4);
    }
    return Py_BuildValue("(KII)", (unsigned long long)addr, len, options);
}

static PyObject *ring_set_descriptor(Ring *g, PyObject *args)
{
    unsigned int idx, len = 0, options = 0;
    unsigned long long addr;
    if (!PyArg_ParseTuple(args, "IK|II:set_descriptor", &idx, &addr, &len, &options))
        return NULL;
    unsigned char *e = xring_entry(&g->r, idx, g->width);
    uint64_t a = addr;
    memcpy(e, &a, 8);
    if (g->width == DESC_BYTES) {
        uint32_t l = len, o = options;
        memcpy(e + 8, &l, 4);
        memcpy(e + 12, &o, 4);
    }
    Py_RETURN_NONE;
}

static PyMethodDef ring_methods[] = {
    {"reserve", (PyCFunction)ring_reserve, METH_O, "reserve(n, /) -> (count, index): up to n free entries."},
    {"submit", (PyCFunction)ring_submit, METH_O, "submit(n, /): publish n reserved entries (release store)."},
    {"peek", (PyCFunction)ring_peek, METH_O, "peek(n, /) -> (count, index): up to n entries to read."},
    {"release", (PyCFunction)ring_release, METH_O, "release(n, /): hand n peeked entries back (release store)."},
    {"sync", (PyCFunction)ring_sync, METH_O, "sync(producer, /): load the cached indices, as a producer or consumer."},
    {"entry", (PyCFunction)ring_descriptor, METH_O, "entry(index, /) -> (addr, length, options) (0s for a u64 ring)."},
    {"set_entry", (PyCFunction)ring_set_descriptor, METH_VARARGS,
     "set_entry(index, addr, length=0, options=0, /): write an entry."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RingType = {
    TYPE_HEAD("rawpacer.engine._engine.Ring", Ring,
              "A ring in libxdp's shape over writable memory (see the module comment)."),
    LIFECYCLE(ring_init, ring_dealloc),
    .tp_methods = ring_methods,
};

/* ---- Engine: the back ends behind one send ---- */

enum { BE_MMSG, BE_TPACKET, BE_XDP };
enum { PUT_OK = 0, PUT_FULL = 1, PUT_ERR = -1 };

typedef struct {
    PyObject_HEAD
    int kind, fd;
    /* mmsg: the batch being gathered */
    struct mmsghdr *msgs;
    struct iovec *iov;
    int queued;
    /* tpacket and xdp: the memory they map (the TX ring's slots; the UMEM) */
    Py_buffer mem;
    /* tpacket: the ring's slots */
    uint32_t frame_size, frame_nr, head, last;
    int pending;
    /* xdp: the UMEM's free chunks, the TX and completion rings */
    Ring *tx, *cq;
    uint32_t chunk_size, chunk_count, nfree, max_descs;
    uint32_t *free_chunks;
    unsigned char *busy; /* per chunk: handed to the kernel, its completion not yet seen */
    int need_wakeup;
    int64_t kicks, dropped, completed, stray, sent;
} Engine;

static void engine_release(Engine *e)
{
    if (e->mem.obj)
        PyBuffer_Release(&e->mem);
    Py_CLEAR(e->tx);
    Py_CLEAR(e->cq);
    FREE_ALL(PyMem_Free, e->msgs, e->iov, e->free_chunks, e->busy);
    e->msgs = NULL, e->iov = NULL, e->free_chunks = NULL, e->busy = NULL;
    e->fd = -2;
}

static void engine_dealloc(Engine *e)
{
    engine_release(e);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static PyTypeObject EngineType;

/* An engine of this kind on fd, over a writable view of memory (tpacket's ring, xdp's UMEM; NULL for
 * mmsg); NULL with the error set. */
static Engine *engine_new(int kind, int fd, PyObject *memory)
{
    Engine *e = PyObject_New(Engine, &EngineType);
    if (!e)
        return NULL;
    memset((char *)e + sizeof(PyObject), 0, sizeof(Engine) - sizeof(PyObject));
    e->kind = kind;
    e->fd = fd;
    e->msgs = PyMem_Calloc(MAX_BURST, sizeof(struct mmsghdr));
    e->iov = PyMem_Calloc(MAX_BURST, sizeof(struct iovec));
    if (!e->msgs || !e->iov) {
        Py_DECREF(e);
        return (Engine *)PyErr_NoMemory();
    }
    if (memory && PyObject_GetBuffer(memory, &e->mem, PyBUF_WRITABLE) < 0) {
        Py_DECREF(e);
        return NULL;
    }
    return e;
}

/* Wait for the socket to be writable (or POLL_MS); the time to check for progress again. */
static void wait_writable(int fd)
{
    struct pollfd pfd = {fd, POLLOUT, 0};
    poll(&pfd, 1, POLL_MS);
}

/* mmsg: send what is gathered, resuming a partial sendmmsg(); frames sent, *err on failure. */
static int mmsg_flush(Engine *e, int *err)
{
    int done = 0;
    while (done < e->queued) {
        int rc = sendmmsg(e->fd, e->msgs + done, (unsigned)(e->queued - done), 0);
        if (rc < 0) {
            *err = errno;
            break;
        }
        done += rc;
    }
    e->queued = 0;
    return done;
}

/* tpacket: one send() makes the kernel transmit every requested slot; repeat (polling) until the
 * last requested slot is no longer SEND_REQUEST. 0, or -1 with *err. */
static int tpacket_flush(Engine *e, int *err)
{
    if (!e->pending)
        return 0;
    volatile uint32_t *status = (uint32_t *)((unsigned char *)e->mem.buf + (size_t)e->last * e->frame_size);
    int64_t stalled_since = now_ns();
    for (;;) {
        if (send(e->fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS) {
            *err = errno;
            return -1;
        }
        if (!(__atomic_load_n(status, __ATOMIC_ACQUIRE) & TP_STATUS_SEND_REQUEST))
            break;
        if (now_ns() - stalled_since > (int64_t)STALL_MS * 1000000) {
            *err = ETIMEDOUT;
            return -1;
        }
        wait_writable(e->fd);
    }
    e->pending = 0;
    return 0;
}

/* xdp: the kick (skipped when bound with need-wakeup and the kernel did not ask). EAGAIN: work is
 * left (the budget spent); EBUSY: the driver dropped a frame it took (counted). 0, or -1 with *err. */
static int xdp_kick(Engine *e, int *err)
{
    if (e->fd < 0)
        return 0;
    if (e->need_wakeup && !(__atomic_load_n(e->tx->r.flags, __ATOMIC_ACQUIRE) & XDP_RING_NEED_WAKEUP))
        return 0;
    e->kicks++;
    if (sendto(e->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
        if (errno == EBUSY)
            e->dropped++;
        else if (errno != EAGAIN && errno != ENOBUFS) {
            *err = errno;
            return -1;
        }
    }
    return 0;
}

/* xdp: take the completions: their chunks go back on the free list. How many. */
static uint32_t xdp_reap(Engine *e)
{
    uint32_t idx, n = xring_peek(&e->cq->r, e->chunk_count, &idx);
    for (uint32_t k = 0; k < n; k++) {
        uint64_t addr;
        memcpy(&addr, xring_entry(&e->cq->r, idx + k, 8), 8);
        uint64_t chunk = addr / e->chunk_size;
        if (chunk < e->chunk_count && e->busy[chunk]) {
            e->busy[chunk] = 0;
            e->free_chunks[e->nfree++] = (uint32_t)chunk;
        } else {
            e->stray++; /* an address this engine did not send (a descriptor published past it) */
        }
    }
    if (n) {
        xring_release(&e->cq->r, n);
        e->completed += n;
    }
    return n;
}

/* xdp: kick and reap until `done(e)`; without a kernel (fd -1) just once. 0, 1 when it gave up
 * without a kernel, -1 with *err (ETIMEDOUT after STALL_MS without progress). */
static int xdp_drive(Engine *e, int (*done)(Engine *, uint32_t), uint32_t need, int *err)
{
    int64_t since = now_ns();
    uint32_t consumer = __atomic_load_n(e->tx->r.consumer, __ATOMIC_ACQUIRE);
    while (!done(e, need)) {
        if (!xring_drained(&e->tx->r) && xdp_kick(e, err) < 0)
            return -1;
        uint32_t now_consumer = __atomic_load_n(e->tx->r.consumer, __ATOMIC_ACQUIRE);
        if (xdp_reap(e) || now_consumer != consumer) {
            consumer = now_consumer;
            since = now_ns();
            continue;
        }
        if (done(e, need))
            break;
        if (e->fd < 0)
            return 1;
        if (now_ns() - since > (int64_t)STALL_MS * 1000000) {
            *err = ETIMEDOUT;
            return -1;
        }
        wait_writable(e->fd);
    }
    return 0;
}

static int xdp_has_chunks(Engine *e, uint32_t need)
{
    return e->nfree >= need;
}

static int xdp_has_room(Engine *e, uint32_t need)
{
    return xring_free(&e->tx->r, need) >= need;
}

static int xdp_taken(Engine *e, uint32_t need)
{
    return xring_drained(&e->tx->r);
}

/* Hand one frame to the back end: PUT_OK, PUT_FULL (no kernel to wait for: stop short), PUT_ERR.
 * `copied`: stamps of stream frame k written into the ring slot or UMEM chunk it is copied to. */
static int put_frame(Engine *e, const Pool *p, Py_ssize_t j, const Stamps *copied, int64_t k, int *err)
{
    unsigned char *frame = p->at[j];
    uint32_t len = (uint32_t)p->len[j];
    if (e->kind == BE_MMSG) {
        if (e->queued == MAX_BURST && mmsg_flush(e, err) < MAX_BURST)
            return PUT_ERR;
        struct mmsghdr *m = &e->msgs[e->queued];
        e->iov[e->queued].iov_base = frame;
        e->iov[e->queued].iov_len = len;
        memset(&m->msg_hdr, 0, sizeof(m->msg_hdr));
        m->msg_hdr.msg_iov = &e->iov[e->queued];
        m->msg_hdr.msg_iovlen = 1;
        if (p->addr_len) {
            m->msg_hdr.msg_name = (unsigned char *)p->addrs.buf + j * p->addr_len;
            m->msg_hdr.msg_namelen = (socklen_t)p->addr_len;
        }
        e->queued++;
        return PUT_OK;
    }
    if (e->kind == BE_TPACKET) {
        unsigned char *slot = (unsigned char *)e->mem.buf + (size_t)e->head * e->frame_size;
        uint32_t *status = (uint32_t *)slot;
        int64_t since = now_ns();
        uint32_t s;
        while ((s = __atomic_load_n(status, __ATOMIC_ACQUIRE)) & TP_BUSY) {
            if (s & TP_STATUS_WRONG_FORMAT) {
                *err = EINVAL;
                return PUT_ERR;
            }
            if (s == TP_STATUS_SEND_REQUEST) { /* the ring is full of requests: have them sent, this one too */
                e->last = e->head;
                e->pending = 1;
                if (tpacket_flush(e, err) < 0)
                    return PUT_ERR;
                if (!(__atomic_load_n(status, __ATOMIC_ACQUIRE) & TP_BUSY))
                    break;
            }
            if (now_ns() - since > (int64_t)STALL_MS * 1000000) {
                *err = ETIMEDOUT;
                return PUT_ERR;
            }
            wait_writable(e->fd);
        }
        memcpy(slot + TPACKET_DATA, frame, len);
        if (copied->n)
            stamps_put(copied, slot + TPACKET_DATA, (uint64_t)k);
        status[1] = len; /* tp_len, tp_snaplen; then the status, a release store */
        status[2] = len;
        __atomic_store_n(status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
        e->last = e->head;
        e->head = e->head + 1 == e->frame_nr ? 0 : e->head + 1;
        e->pending++;
        return PUT_OK;
    }
    uint32_t descs = len ? (len + e->chunk_size - 1) / e->chunk_size : 1, idx;
    if (!xdp_has_chunks(e, descs)) {
        int rc = xdp_drive(e, xdp_has_chunks, descs, err);
        if (rc)
            return rc < 0 ? PUT_ERR : PUT_FULL;
    }
    if (!xdp_has_room(e, descs)) {
        int rc = xdp_drive(e, xdp_has_room, descs, err);
        if (rc)
            return rc < 0 ? PUT_ERR : PUT_FULL;
    }
    xring_reserve(&e->tx->r, descs, &idx);
    for (uint32_t d = 0; d < descs; d++) {
        uint32_t chunk = e->free_chunks[--e->nfree];
        uint64_t addr = (uint64_t)chunk * e->chunk_size;
        e->busy[chunk] = 1;
        uint32_t piece = len - d * e->chunk_size < e->chunk_size ? len - d * e->chunk_size : e->chunk_size;
        uint32_t options = d + 1 < descs ? XDP_PKT_CONTD : 0;
        memcpy((unsigned char *)e->mem.buf + addr, frame + (size_t)d * e->chunk_size, piece);
        if (d == 0 && copied->n) /* send() checked that every stamp lies in a frame's first chunk */
            stamps_put(copied, (unsigned char *)e->mem.buf + addr, (uint64_t)k);
        unsigned char *entry = xring_entry(&e->tx->r, idx + d, DESC_BYTES);
        memcpy(entry, &addr, 8);
        memcpy(entry + 8, &piece, 4);
        memcpy(entry + 12, &options, 4);
    }
    xring_submit(&e->tx->r, descs);
    return PUT_OK;
}

/* Send what was handed over: frames gone (mmsg), 0 otherwise; -1 with *err on failure. With no
 * kernel (xdp, fd -1) the frames stay in the ring. */
static int flush(Engine *e, int *err)
{
    if (e->kind == BE_MMSG)
        return mmsg_flush(e, err);
    if (e->kind == BE_TPACKET)
        return tpacket_flush(e, err);
    return xdp_drive(e, xdp_taken, 0, err) < 0 ? -1 : 0;
}

/* Where a send stamps sequences: at byte `at` (-1: nowhere); frame k carries k / n + bias. And the
 * fields it stamps: into the pool before a frame is queued (sendmmsg), or into the copy (the rings). */
typedef struct {
    Engine *e;
    Pool *p;
    int64_t first, base; /* the pool's stream index of the loop's datagram `base` */
    Py_ssize_t at;
    int64_t bias;
    Stamps in_pool, copied;
} Run;

/* Frames k .. k+n-1 of the stream handed over and flushed: how many went (*err on failure). */
static int run_frames(Run *run, int64_t k, int n, int *err)
{
    Engine *e = run->e;
    Pool *p = run->p;
    int handed = 0, gone = 0;
    *err = 0;
    for (; handed < n; handed++) {
        Py_ssize_t j = (Py_ssize_t)((k + handed) % p->n);
        /* sendmmsg sends from the pool itself: a frame's next round waits for its last to leave */
        if ((run->at >= 0 || run->in_pool.n) && e->kind == BE_MMSG && e->queued == p->n) {
            int rc = mmsg_flush(e, err);
            gone += rc;
            if (*err)
                break;
        }
        if (run->at >= 0)
            sequence_put(p->at[j] + run->at, (uint64_t)((k + handed) / p->n + run->bias));
        if (run->in_pool.n)
            stamps_put(&run->in_pool, p->at[j], (uint64_t)(k + handed));
        int rc = put_frame(e, p, j, &run->copied, k + handed, err);
        if (rc == PUT_ERR)
            return handed;
        if (rc == PUT_FULL)
            break;
    }
    int rc = *err ? 0 : flush(e, err);
    if (e->kind == BE_MMSG)
        handed = gone + rc;
    e->sent += handed;
    return handed;
}

static int emit_paced(void *ctx, int64_t index, int n, int *err)
{
    Run *run = ctx;
    int done = run_frames(run, run->first + (index - run->base), n, err);
    if (!*err && done < n)
        *err = EAGAIN; /* no kernel to wait for: stop */
    return done;
}

static PyTypeObject *core_type; /* rawpacer._pace.Core, when that extension is there */

/* send()'s stamps, checked: each a FieldStamp whose value fits its mask and whose bytes (its
 * checksums too) lie inside every pool frame, and, for AF_XDP, inside a frame's first UMEM chunk.
 * 0, or -1 with ValueError (one line) or TypeError. */
static int stamps_parse(PyObject *obj, const Engine *e, const Pool *p, Stamps *out)
{
    out->n = 0;
    if (obj == Py_None)
        return 0;
    PyObject *fast = PySequence_Fast(obj, "send: stamps must be a sequence of FieldStamp tuples");
    if (!fast)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > MAX_STAMPS) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "send: %zd stamps; at most %d fields are stamped per frame", n, MAX_STAMPS);
        return -1;
    }
    int64_t shortest = INT64_MAX;
    for (Py_ssize_t j = 0; j < p->n; j++)
        shortest = p->len[j] < shortest ? p->len[j] : shortest;
    if (e->kind == BE_XDP && (int64_t)e->chunk_size < shortest)
        shortest = e->chunk_size; /* the engine stamps a frame's first chunk only */
    for (Py_ssize_t i = 0; i < n; i++) {
        Stamp *s = &out->s[i];
        unsigned long long mask, low_high, low, last, key;
        int random;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i),
                              "niKpKKKKnn;a stamp is (at, width, mask, random, low_high, low, last, key, ip_sum, udp_sum)",
                              &s->at, &s->width, &mask, &random, &low_high, &low, &last, &key, &s->ip_sum, &s->udp_sum)) {
            Py_DECREF(fast);
            return -1;
        }
        s->mask = (uint32_t)mask, s->random = random;
        s->low_high = low_high, s->low = low, s->last = last, s->key = key;
        uint64_t top = s->width == 2 ? 0xFFFF : 0xFFFFFFFF;
        int bad_value = s->width == 16 ? low_high == UINT64_MAX && last > UINT64_MAX - low
                      : s->width == 2 || s->width == 4 ? mask == 0 || mask > top || last > mask || low > mask - last
                                                       : 1;
        int64_t end = s->at + s->width;
        end = s->ip_sum + 2 > end ? s->ip_sum + 2 : end;
        end = s->udp_sum + 2 > end ? s->udp_sum + 2 : end;
        if (bad_value || s->at < 0 || s->ip_sum < -1 || s->udp_sum < -1 || end > shortest) {
            Py_DECREF(fast);
            PyErr_Format(PyExc_ValueError,
                         "send: stamp %zd (%d bytes at %zd, checksums at %zd and %zd, values %llu-%llu of mask %#llx) "
                         "must be 2, 4 or 16 bytes, its values within its mask, and lie inside every %lld-byte frame%s",
                         i, s->width, s->at, s->ip_sum, s->udp_sum, low, low + last, mask, (long long)shortest,
                         e->kind == BE_XDP ? " (and UMEM chunk)" : "");
            return -1;
        }
    }
    Py_DECREF(fast);
    out->n = (int)n;
    if (n && e->kind == BE_MMSG && !p->writable) {
        PyErr_SetString(PyExc_ValueError, "send: stamps through sendmmsg need a writable pool (it sends from there)");
        return -1;
    }
    return 0;
}

static PyObject *engine_send(Engine *e, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 4 || nargs > 7) {
        PyErr_SetString(PyExc_TypeError,
                        "send(pool, first, count, batch, core=None, sequence=None, stamps=None) takes 4 to 7 arguments");
        return NULL;
    }
    if (e->fd == -2) {
        PyErr_SetString(PyExc_ValueError, "send: the engine is closed");
        return NULL;
    }
    if (!PyObject_TypeCheck(args[0], &PoolType)) {
        PyErr_SetString(PyExc_TypeError, "send: pool must be a rawpacer.engine Pool");
        return NULL;
    }
    Pool *p = (Pool *)args[0];
    if (p->n == 0) {
        PyErr_SetString(PyExc_ValueError, "send: the pool was released");
        return NULL;
    }
    long long first = PyLong_AsLongLong(args[1]), count = PyLong_AsLongLong(args[2]);
    long batch = PyLong_AsLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *core_obj = nargs > 4 ? args[4] : Py_None, *seq = nargs > 5 ? args[5] : Py_None;
    Core *core = NULL;
    if (core_obj != Py_None) {
        if (!core_type || !PyObject_TypeCheck(core_obj, core_type)) {
            PyErr_SetString(PyExc_TypeError, "send: core must be a rawpacer._pace.Core or None");
            return NULL;
        }
        core = (Core *)core_obj;
    }
    int64_t burst = core ? core->burst : batch;
    if (first < 0 || count < 0 || burst < 1 || burst > MAX_BURST) {
        PyErr_Format(PyExc_ValueError, "send: first %lld and count %lld must be 0 or more, the batch 1-%d", first,
                     count, MAX_BURST);
        return NULL;
    }
    Run run = {e, p, first, core ? core->sent : 0, -1, 0, {0}, {0}};
    if (stamps_parse(nargs > 6 ? args[6] : Py_None, e, p, e->kind == BE_MMSG ? &run.in_pool : &run.copied) < 0)
        return NULL;
    if (seq != Py_None) {
        long long first_seq;
        if (!PyArg_ParseTuple(seq, "nL;sequence must be (offset, first)", &run.at, &first_seq))
            return NULL;
        if (run.at < 0 || first_seq < 0 || !p->writable) {
            PyErr_SetString(PyExc_ValueError, "send: a sequence needs a writable pool, its offset and value 0 or more");
            return NULL;
        }
        run.bias = first_seq - first / p->n;
    }
    for (Py_ssize_t j = 0; j < p->n; j++) {
        int64_t len = p->len[j];
        int64_t room = e->kind == BE_TPACKET ? (int64_t)e->frame_size - TPACKET_DATA
                     : e->kind == BE_XDP     ? (int64_t)e->max_descs * e->chunk_size
                                             : INT32_MAX;
        if ((e->kind != BE_MMSG && len == 0) || len > room || (run.at >= 0 && len < run.at + SEQUENCE_BYTES)) {
            PyErr_Format(PyExc_ValueError,
                         "send: pool frame %zd (%lld bytes) does not fit: 1-%lld bytes%s", j, (long long)len,
                         (long long)room, run.at >= 0 ? " with room for the sequence" : "");
            return NULL;
        }
    }
    Py_INCREF(p);
    int err = 0, failed = 0;
    int64_t before = e->sent, dropped = e->dropped;
    if (core) {
        failed = core_paced_loop(core, count, emit_paced, &run, &err) < 0;
    } else {
        int64_t done = 0, checked = now_ns();
        PyThreadState *ts = PyEval_SaveThread();
        while (done < count) {
            int n = (int)(count - done < burst ? count - done : burst);
            int went = run_frames(&run, first + done, n, &err);
            done += went;
            if (err || went < n)
                break;
            if (now_ns() - checked >= SIGNAL_CHECK_NS && (failed = check_signals(&ts, &checked) < 0))
                break;
        }
        PyEval_RestoreThread(ts);
    }
    Py_DECREF(p);
    if (failed)
        return NULL;
    if (err && err != EAGAIN) {
        errno = err;
        return PyErr_SetFromErrno(err == ETIMEDOUT ? PyExc_TimeoutError : PyExc_OSError);
    }
    int64_t gone = (e->sent - before) - (e->dropped - dropped);
    return PyLong_FromLongLong(gone > 0 ? gone : 0);
}

static PyObject *engine_reap(Engine *e, PyObject *unused)
{
    return PyLong_FromUnsignedLong(e->kind == BE_XDP && e->cq ? xdp_reap(e) : 0);
}

static PyObject *engine_close(Engine *e, PyObject *unused)
{
    engine_release(e);
    Py_RETURN_NONE;
}

static PyObject *engine_in_flight(Engine *e, void *closure)
{
    return PyLong_FromUnsignedLong(e->kind == BE_XDP ? e->chunk_count - e->nfree : 0);
}

static PyMethodDef engine_methods[] = {
    FASTCALL("send", engine_send,
             "send(pool, first, count, batch, core=None, sequence=None, stamps=None, /) -> int: frames of the pool's "
             "stream."),
    {"reap", (PyCFunction)engine_reap, METH_NOARGS, "reap() -> int: take AF_XDP completions now."},
    {"close", (PyCFunction)engine_close, METH_NOARGS, "close(): release the memory the engine holds."},
    {NULL, NULL, 0, NULL},
};

#define ERO(name, field) RO_INT64(Engine, name, field, NULL)
static PyMemberDef engine_members[] = {
    ERO("kicks", kicks), ERO("dropped", dropped), ERO("completed", completed), ERO("stray", stray), ERO("sent", sent),
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef engine_getset[] = {
    GETTER("in_flight", engine_in_flight, "UMEM chunks handed to the kernel and not completed."),
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EngineType = {
    TYPE_HEAD("rawpacer.engine._engine.Engine", Engine,
              "A transmit back end behind one send (see the module comment); made by mmsg, tpacket or xdp."),
    .tp_dealloc = (destructor)engine_dealloc,
    .tp_methods = engine_methods,
    .tp_members = engine_members,
    .tp_getset = engine_getset,
};

static PyObject *make_mmsg(PyObject *module, PyObject *arg)
{
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "mmsg: fd must be a descriptor");
        return NULL;
    }
    return (PyObject *)engine_new(BE_MMSG, (int)fd, NULL);
}

static PyObject *make_tpacket(PyObject *module, PyObject *args)
{
    int fd;
    PyObject *ring;
    unsigned int frame_size, frame_nr;
    if (!PyArg_ParseTuple(args, "iOII:tpacket", &fd, &ring, &frame_size, &frame_nr))
        return NULL;
    Engine *e = engine_new(BE_TPACKET, fd, ring);
    if (!e)
        return NULL;
    if (fd < 0 || frame_nr == 0 || frame_size <= TPACKET_DATA || frame_size % 16 ||
        (Py_ssize_t)frame_size * frame_nr > e->mem.len) {
        Py_DECREF(e);
        PyErr_SetString(PyExc_ValueError, "tpacket: a descriptor, and frame_nr slots of frame_size bytes in the ring");
        return NULL;
    }
    e->frame_size = frame_size, e->frame_nr = frame_nr;
    return (PyObject *)e;
}

static PyObject *make_xdp(PyObject *module, PyObject *args)
{
    int fd, need_wakeup;
    PyObject *umem, *tx, *cq;
    unsigned int chunk_size, max_descs;
    if (!PyArg_ParseTuple(args, "iOIO!O!pI:xdp", &fd, &umem, &chunk_size, &RingType, &tx, &RingType, &cq,
                          &need_wakeup, &max_descs))
        return NULL;
    Engine *e = engine_new(BE_XDP, fd, umem);
    if (!e)
        return NULL;
    if (fd < -1 || chunk_size < 64 || (chunk_size & (chunk_size - 1)) || e->mem.len < chunk_size || max_descs < 1 ||
        ((Ring *)tx)->width != DESC_BYTES || ((Ring *)cq)->width != 8) {
        Py_DECREF(e);
        PyErr_SetString(PyExc_ValueError,
                        "xdp: fd -1 or a descriptor, chunk_size a power of two within the UMEM, a descriptor TX ring, "
                        "a u64 completion ring, max_descs 1 or more");
        return NULL;
    }
    e->chunk_size = chunk_size;
    e->chunk_count = (uint32_t)(e->mem.len / chunk_size);
    e->max_descs = max_descs;
    e->need_wakeup = need_wakeup;
    e->free_chunks = PyMem_Malloc((size_t)e->chunk_count * sizeof(uint32_t));
    e->busy = PyMem_Calloc(e->chunk_count, 1);
    if (!e->free_chunks || !e->busy) {
        Py_DECREF(e);
        return PyErr_NoMemory();
    }
    for (uint32_t k = 0; k < e->chunk_count; k++) /* chunk 0 is taken first */
        e->free_chunks[k] = e->chunk_count - 1 - k;
    e->nfree = e->chunk_count;
    Py_INCREF(tx);
    Py_INCREF(cq);
    e->tx = (Ring *)tx, e->cq = (Ring *)cq;
    xring_init_prod(&e->tx->r);
    xring_init_cons(&e->cq->r);
    return (PyObject *)e;
}

static PyMethodDef methods[] = {
    {"mmsg", (PyCFunction)make_mmsg, METH_O, "mmsg(fd, /) -> Engine: sendmmsg() batches."},
    {"tpacket", (PyCFunction)make_tpacket, METH_VARARGS,
     "tpacket(fd, ring, frame_size, frame_nr, /) -> Engine: a mapped TPACKET_V2 TX ring."},
    {"xdp", (PyCFunction)make_xdp, METH_VARARGS,
     "xdp(fd, umem, chunk_size, tx, completion, need_wakeup, max_descs, /) -> Engine: AF_XDP TX."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = MODULE_DEF("rawpacer.engine._engine", NULL, methods);

PyMODINIT_FUNC PyInit__engine(void)
{
    PyObject *pace = PyImport_ImportModule("rawpacer._pace");
    if (pace) {
        core_type = (PyTypeObject *)PyObject_GetAttrString(pace, "Core");
        Py_DECREF(pace);
    }
    if (!core_type)
        PyErr_Clear(); /* no C pacer: the engine sends unpaced only */
    return module_create(&module, NULL, (PyTypeObject *[]){&PoolType, &RingType, &EngineType, NULL});
}
