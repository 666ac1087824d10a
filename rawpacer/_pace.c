/* rawpacer._pace: the pacer in C, its waits with the GIL released, and a whole paced send loop.
 * rawpacer/pacing/pacer.py holds the pure-Python twin (PyCore) and documents the rules; the
 * two must agree. Times are CLOCK_MONOTONIC nanoseconds, the clock of time.monotonic_ns().
 *
 * wait_until(deadline_ns, spin_ns, /) -> (now_ns, slept_ns)
 *     Sleep (clock_nanosleep, TIMER_ABSTIME) until spin_ns before the deadline, then spin on the
 *     clock until it has passed, the GIL released (unless the deadline is under 20 us away).
 *     Returns the time it returned at and how long it slept. A signal ends the sleep early; its
 *     Python handler runs (KeyboardInterrupt propagates) and the wait resumes if it returns.
 *
 * Core(spin_ns, stall_ns, gap_ppm, lead_ns, burst, late_cap, q, r, den, schedule, /)
 *     A pacer's state and rules. Departure i is due at anchor + offset(i): offset(i) = i*q +
 *     floor(i*r/den) when den > 0 (a constant schedule), else read from schedule.offsets(start,
 *     count) a window at a time (Poisson). wait(i) returns when departure i is due: the first
 *     wait anchors the schedule lead_ns ahead; a departure lateness_ns >= stall_ns late is a stall
 *     (it leaves at once, the anchor moves by its lateness, the stall is counted); otherwise it
 *     leaves at its time but no sooner after the previous departure than gap_ppm millionths of its
 *     scheduled gap (catching up without bursts). start(t0_ns=None) anchors departure 0 at t0_ns
 *     (default lead_ns from now). send(fd, frames, addresses, count) runs count datagrams of
 *     departures through the same rules with the sends in C: datagram k (counted over every
 *     send) is frames[k % len(frames)], sent with sendto() to addresses[same index] (sockaddr
 *     bytes) or, when addresses is None, with send() on a connected or bound socket; a departure
 *     carries `burst` datagrams, a burst of more than one in one sendmmsg(). With sequence=(at,
 *     first) every datagram gets its stream sequence stamped at byte `at` of its frame (writable
 *     buffers; _sequence.h's field) before it leaves: the round of frames this call starts in
 *     carries `first`, each later round one more. It releases the GIL
 *     and takes it back every 10 ms to let signal handlers run, so Ctrl-C stops it with the
 *     record up to date. lateness() -> bytes: the int64 lateness of the first late_cap
 *     departures. Read-only attributes: anchor_ns, last_ns, next_departure, departures, stalls,
 *     stalled_ns, busy_ns (time awake in waits: the pacer's CPU time), sent, late_overflow_max.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <structmember.h>
#include <time.h>

#include "_sequence.h"

#define MAX_BURST 1024 /* UIO_MAXIOV: the most messages one sendmmsg() takes */

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Sleep until spin_ns before the deadline, then spin until it has passed. Returns the time it
 * returned at, or -1 when a signal cut the sleep short; *slept gets the time spent asleep. */
static int64_t wait_nogil(int64_t deadline, int64_t spin_ns, int64_t *slept)
{
    int64_t now = now_ns();
    *slept = 0;
    if (deadline - now > spin_ns) {
        int64_t wake = deadline - spin_ns;
        struct timespec ts = {(time_t)(wake / 1000000000), (long)(wake % 1000000000)};
        int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        int64_t after = now_ns();
        *slept = after - now;
        if (rc == EINTR)
            return -1;
        now = after;
    }
    while (now < deadline) {
        cpu_relax();
        now = now_ns();
    }
    return now;
}

/* Waits shorter than this spin with the GIL held: releasing and taking it back costs more. */
#define GIL_RELEASE_NS 20000

static PyObject *wait_until(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "wait_until(deadline_ns, spin_ns) takes 2 arguments");
        return NULL;
    }
    long long deadline = PyLong_AsLongLong(args[0]);
    long long spin = PyLong_AsLongLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    int64_t slept_total = 0, now = now_ns();
    if (deadline - now < GIL_RELEASE_NS) {
        while (now < deadline) {
            cpu_relax();
            now = now_ns();
        }
        return Py_BuildValue("(LL)", (long long)now, 0LL);
    }
    for (;;) {
        int64_t slept;
        Py_BEGIN_ALLOW_THREADS
        now = wait_nogil(deadline, spin, &slept);
        Py_END_ALLOW_THREADS
        slept_total += slept;
        if (now >= 0)
            return Py_BuildValue("(LL)", (long long)now, (long long)slept_total);
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

/* The buffers and addresses of one send call, pinned while the GIL is released. */
typedef struct {
    Py_ssize_t n;
    Py_buffer *frames;
    Py_buffer *addrs; /* NULL: send() on a connected / bound socket */
} Pinned;

static void unpin(Pinned *p)
{
    for (Py_ssize_t i = 0; i < p->n; i++) {
        if (p->frames && p->frames[i].obj)
            PyBuffer_Release(&p->frames[i]);
        if (p->addrs && p->addrs[i].obj)
            PyBuffer_Release(&p->addrs[i]);
    }
    PyMem_Free(p->frames);
    PyMem_Free(p->addrs);
}

static int pin(Pinned *p, PyObject *frames, PyObject *addrs, int writable)
{
    memset(p, 0, sizeof(*p));
    PyObject *fseq = PySequence_Fast(frames, "frames must be a sequence of buffers");
    if (!fseq)
        return -1;
    PyObject *aseq = NULL;
    if (addrs != Py_None) {
        aseq = PySequence_Fast(addrs, "addresses must be None or a sequence of sockaddr bytes");
        if (!aseq) {
            Py_DECREF(fseq);
            return -1;
        }
    }
    int rc = -1;
    p->n = PySequence_Fast_GET_SIZE(fseq);
    if (p->n == 0) {
        PyErr_SetString(PyExc_ValueError, "frames is empty; give at least one frame");
        goto done;
    }
    if (aseq && PySequence_Fast_GET_SIZE(aseq) != p->n) {
        PyErr_SetString(PyExc_ValueError, "addresses must have one entry per frame");
        goto done;
    }
    p->frames = PyMem_Calloc((size_t)p->n, sizeof(Py_buffer));
    p->addrs = aseq ? PyMem_Calloc((size_t)p->n, sizeof(Py_buffer)) : NULL;
    if (!p->frames || (aseq && !p->addrs)) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < p->n; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(fseq, i), &p->frames[i],
                               writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0)
            goto done;
        if (aseq && PyObject_GetBuffer(PySequence_Fast_GET_ITEM(aseq, i), &p->addrs[i], PyBUF_SIMPLE) < 0)
            goto done;
    }
    rc = 0;
done:
    Py_DECREF(fseq);
    Py_XDECREF(aseq);
    if (rc < 0)
        unpin(p);
    return rc;
}

/* Where a send call stamps sequences: at byte `at` of each frame (-1: nowhere); datagram k
 * carries k / n + bias. */
typedef struct {
    Py_ssize_t at;
    int64_t bias;
} Stamp;

/* Send datagrams first .. first+n-1 (indices into the pinned frames, wrapping), each stamped with
 * its sequence first when asked; how many went, with *err set to the errno of a failed call (0 if none). */
static int send_burst(int fd, const Pinned *p, Py_ssize_t first, int n, struct mmsghdr *msgs,
                      struct iovec *iov, const Stamp *stamp, int *err)
{
    *err = 0;
    if (stamp->at >= 0) {
        for (int m = 0; m < n; m++) {
            Py_ssize_t k = (first + m) % p->n;
            sequence_put((unsigned char *)p->frames[k].buf + stamp->at, (uint64_t)((first + m) / p->n + stamp->bias));
        }
    }
    if (n == 1) {
        Py_ssize_t k = first % p->n;
        ssize_t rc = p->addrs
            ? sendto(fd, p->frames[k].buf, (size_t)p->frames[k].len, 0,
                     (const struct sockaddr *)p->addrs[k].buf, (socklen_t)p->addrs[k].len)
            : send(fd, p->frames[k].buf, (size_t)p->frames[k].len, 0);
        if (rc < 0) {
            *err = errno;
            return 0;
        }
        return 1;
    }
    for (int m = 0; m < n; m++) {
        Py_ssize_t k = (first + m) % p->n;
        iov[m].iov_base = p->frames[k].buf;
        iov[m].iov_len = (size_t)p->frames[k].len;
        memset(&msgs[m].msg_hdr, 0, sizeof(msgs[m].msg_hdr));
        msgs[m].msg_hdr.msg_iov = &iov[m];
        msgs[m].msg_hdr.msg_iovlen = 1;
        if (p->addrs) {
            msgs[m].msg_hdr.msg_name = p->addrs[k].buf;
            msgs[m].msg_hdr.msg_namelen = (socklen_t)p->addrs[k].len;
        }
    }
    int done = 0;
    while (done < n) {
        int rc = sendmmsg(fd, msgs + done, (unsigned)(n - done), 0);
        if (rc < 0) {
            *err = errno;
            break;
        }
        done += rc;
    }
    return done;
}


/* How often a long send loop takes the GIL back to let signal handlers (Ctrl-C) run. */
#define SIGNAL_CHECK_NS 10000000
/* Departures a Poisson window holds. */
#define WINDOW 8192

typedef struct {
    PyObject_HEAD
    int64_t spin, stall, gap_ppm, lead, burst, late_cap;
    int64_t q, r, den;
    PyObject *schedule;
    PyObject *window_obj;
    Py_buffer window;
    int64_t win_start, win_len;
    int64_t anchor, last, prev_offset;
    int has_anchor, has_prev;
    int64_t next, departures, stalls, stalled, busy, sent, overflow_max;
    int64_t *late;
    int64_t late_len, late_alloc;
} Core;

static void core_drop_window(Core *c)
{
    if (c->window_obj) {
        PyBuffer_Release(&c->window);
        Py_CLEAR(c->window_obj);
    }
    c->win_len = 0;
}

static void core_dealloc(Core *c)
{
    core_drop_window(c);
    Py_XDECREF(c->schedule);
    PyMem_RawFree(c->late);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static int core_init(Core *c, PyObject *args, PyObject *kwds)
{
    long long v[9];
    PyObject *schedule;
    if (!PyArg_ParseTuple(args, "LLLLLLLLLO:Core", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
                          &schedule))
        return -1;
    if (v[0] < 0 || v[1] < 1 || v[2] < 0 || v[2] > 1000000 || v[3] < 0 || v[4] < 1 || v[4] > MAX_BURST ||
        v[5] < 0 || v[6] < 0 || v[7] < 0 || v[8] < 0 || (v[8] > 0 && v[7] >= v[8])) {
        PyErr_SetString(PyExc_ValueError, "Core: spin_ns >= 0, stall_ns >= 1, gap_ppm 0-1000000, lead_ns >= 0, "
                                          "burst 1-1024, late_cap >= 0, 0 <= r < den or den == 0");
        return -1;
    }
    c->spin = v[0], c->stall = v[1], c->gap_ppm = v[2], c->lead = v[3], c->burst = v[4], c->late_cap = v[5];
    c->q = v[6], c->r = v[7], c->den = v[8];
    Py_INCREF(schedule);
    Py_XSETREF(c->schedule, schedule);
    return 0;
}

/* Make departure i's offset readable from the window (GIL held). */
static int core_fill_window(Core *c, int64_t i)
{
    core_drop_window(c);
    PyObject *arr = PyObject_CallMethod(c->schedule, "offsets", "LL", (long long)i, (long long)WINDOW);
    if (!arr)
        return -1;
    if (PyObject_GetBuffer(arr, &c->window, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        Py_DECREF(arr);
        return -1;
    }
    if (c->window.itemsize != 8 || c->window.len < 8) {
        PyBuffer_Release(&c->window);
        Py_DECREF(arr);
        PyErr_SetString(PyExc_ValueError, "schedule.offsets() must return a non-empty int64 array");
        return -1;
    }
    c->window_obj = arr;
    c->win_start = i;
    c->win_len = c->window.len / 8;
    return 0;
}

static inline int in_window(const Core *c, int64_t i)
{
    return c->den > 0 || (c->win_len && i >= c->win_start && i < c->win_start + c->win_len);
}

/* Departure i's offset; for a windowed schedule, in_window(c, i) must hold. */
static inline int64_t core_offset(const Core *c, int64_t i)
{
    if (c->den > 0)
        return i * c->q + (int64_t)(((__int128)i * c->r) / c->den);
    return ((const int64_t *)c->window.buf)[i - c->win_start];
}

/* Keep departure k's lateness (GIL not needed: raw allocator). */
static void core_record(Core *c, int64_t late)
{
    c->departures++;
    if (c->late_len >= c->late_cap) {
        if (late > c->overflow_max)
            c->overflow_max = late;
        return;
    }
    if (c->late_len == c->late_alloc) {
        int64_t grow = c->late_alloc ? c->late_alloc * 2 : 4096;
        if (grow > c->late_cap)
            grow = c->late_cap;
        int64_t *more = PyMem_RawRealloc(c->late, (size_t)grow * sizeof(int64_t));
        if (!more) {
            c->late_cap = c->late_len; /* out of memory: keep the max from here on */
            if (late > c->overflow_max)
                c->overflow_max = late;
            return;
        }
        c->late = more;
        c->late_alloc = grow;
    }
    c->late[c->late_len++] = late;
}

/* Decide departure i (offset off) at time entry: *due is when it was due; a stall returns 1
 * (re-anchored, it leaves now), otherwise *target is the time to wait for. */
static inline int core_decide(Core *c, int64_t off, int64_t entry, int64_t *target, int64_t *due_out)
{
    if (!c->has_anchor) {
        c->anchor = entry + c->lead - off;
        c->has_anchor = 1;
    }
    int64_t due = c->anchor + off;
    *due_out = due;
    if (entry - due >= c->stall) {
        c->stalls++;
        c->stalled += entry - due;
        c->anchor += entry - due;
        *target = entry;
        return 1;
    }
    *target = due;
    if (c->has_prev) {
        int64_t soonest = c->last + (int64_t)(((__int128)(off - c->prev_offset) * c->gap_ppm) / 1000000);
        if (soonest > *target)
            *target = soonest;
    }
    return 0;
}

/* Departure i (offset off), due at `due`, left at `now`. */
static inline void core_depart(Core *c, int64_t i, int64_t off, int64_t due, int64_t now)
{
    core_record(c, now - due);
    c->last = now;
    c->prev_offset = off;
    c->has_prev = 1;
    c->next = i + 1;
}

static PyObject *core_wait(Core *c, PyObject *arg)
{
    long long i = PyLong_AsLongLong(arg);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (!in_window(c, i) && core_fill_window(c, i) < 0)
        return NULL;
    int64_t off = core_offset(c, i), entry = now_ns(), target, due, now = entry, slept = 0;
    if (!core_decide(c, off, entry, &target, &due)) {
        if (target - entry < GIL_RELEASE_NS) {
            while (now < target) {
                cpu_relax();
                now = now_ns();
            }
        } else {
            for (;;) {
                int64_t s;
                Py_BEGIN_ALLOW_THREADS
                now = wait_nogil(target, c->spin, &s);
                Py_END_ALLOW_THREADS
                slept += s;
                if (now >= 0)
                    break;
                if (PyErr_CheckSignals() < 0) {
                    c->busy += now_ns() - entry - slept;
                    return NULL;
                }
            }
        }
        c->busy += now - entry - slept;
    }
    core_depart(c, i, off, due, now);
    Py_RETURN_NONE;
}

static PyObject *core_start(Core *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "start(t0_ns=None) takes at most 1 argument");
        return NULL;
    }
    if (nargs == 0 || args[0] == Py_None) {
        c->anchor = now_ns() + c->lead;
    } else {
        long long t0 = PyLong_AsLongLong(args[0]);
        if (t0 == -1 && PyErr_Occurred())
            return NULL;
        c->anchor = t0;
    }
    c->has_anchor = 1;
    Py_RETURN_NONE;
}

/* Take the GIL back to let signal handlers run, then release it again; -1 if one raised. */
static int check_signals(PyThreadState **ts, int64_t *checked)
{
    PyEval_RestoreThread(*ts);
    int rc = PyErr_CheckSignals();
    *ts = PyEval_SaveThread();
    *checked = now_ns();
    return rc;
}

static PyObject *core_send(Core *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "send(fd, frames, addresses, count, sequence=None) takes 4 or 5 arguments");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    long long count = PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT32_MAX || count < 0) {
        PyErr_SetString(PyExc_ValueError, "send: fd must be a descriptor and count 0 or more");
        return NULL;
    }
    Stamp stamp = {-1, 0};
    long long first_seq = 0;
    if (nargs == 5 && args[4] != Py_None &&
        !PyArg_ParseTuple(args[4], "nL;sequence must be (offset, first)", &stamp.at, &first_seq))
        return NULL;
    if (nargs == 5 && args[4] != Py_None && (stamp.at < 0 || first_seq < 0)) {
        PyErr_SetString(PyExc_ValueError, "send: a sequence's offset and first value must be 0 or more");
        return NULL;
    }
    Pinned p;
    if (pin(&p, args[1], args[2], stamp.at >= 0) < 0)
        return NULL;
    for (Py_ssize_t i = 0; stamp.at >= 0 && i < p.n; i++) {
        if (p.frames[i].len < stamp.at + SEQUENCE_BYTES) {
            unpin(&p);
            PyErr_Format(PyExc_ValueError, "send: frame %zd has no room for a sequence at byte %zd", i, stamp.at);
            return NULL;
        }
    }
    if (stamp.at >= 0 && c->burst > p.n) {
        unpin(&p);
        PyErr_SetString(PyExc_ValueError, "send: a burst longer than the frames cannot carry sequences");
        return NULL;
    }
    stamp.bias = (int64_t)first_seq - c->sent / p.n;
    struct mmsghdr msgs[MAX_BURST];
    struct iovec iov[MAX_BURST];
    int64_t goal = c->sent + count, checked = now_ns();
    int err = 0, failed = 0;
    PyThreadState *ts = PyEval_SaveThread();
    while (c->sent < goal) {
        int64_t i = c->next;
        if (!in_window(c, i)) {
            PyEval_RestoreThread(ts);
            failed = core_fill_window(c, i) < 0;
            ts = PyEval_SaveThread();
            if (failed)
                break;
        }
        int64_t off = core_offset(c, i), entry = now_ns(), target, due, now = entry, slept = 0;
        if (!core_decide(c, off, entry, &target, &due)) {
            now = wait_nogil(target, c->spin, &slept);
            if (now < 0) { /* a signal: let Python handle it, then wait again */
                c->busy += now_ns() - entry - slept;
                if ((failed = check_signals(&ts, &checked) < 0))
                    break;
                continue;
            }
            c->busy += now - entry - slept;
        }
        core_depart(c, i, off, due, now);
        int n = (int)(goal - c->sent < c->burst ? goal - c->sent : c->burst);
        c->sent += send_burst((int)fd, &p, (Py_ssize_t)c->sent, n, msgs, iov, &stamp, &err);
        if (err)
            break;
        if (now - checked >= SIGNAL_CHECK_NS && (failed = check_signals(&ts, &checked) < 0))
            break;
    }
    PyEval_RestoreThread(ts);
    unpin(&p);
    if (failed)
        return NULL;
    if (err) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *core_lateness(Core *c, PyObject *unused)
{
    return PyBytes_FromStringAndSize((const char *)c->late, (Py_ssize_t)(c->late_len * (int64_t)sizeof(int64_t)));
}

static PyMethodDef core_methods[] = {
    {"wait", (PyCFunction)core_wait, METH_O, "wait(departure, /): return when it is due."},
    {"start", (PyCFunction)(void (*)(void))core_start, METH_FASTCALL, "start(t0_ns=None, /): anchor departure 0."},
    {"send", (PyCFunction)(void (*)(void))core_send, METH_FASTCALL,
     "send(fd, frames, addresses, count, sequence=None, /): count more datagrams, paced, the loop in C."},
    {"lateness", (PyCFunction)core_lateness, METH_NOARGS, "lateness() -> bytes: int64 lateness per departure."},
    {NULL, NULL, 0, NULL},
};

#define RO(name, field) {name, T_LONGLONG, offsetof(Core, field), READONLY, NULL}
static PyMemberDef core_members[] = {
    RO("anchor_ns", anchor), RO("last_ns", last), RO("next_departure", next), RO("departures", departures),
    RO("stalls", stalls), RO("stalled_ns", stalled), RO("busy_ns", busy), RO("sent", sent),
    RO("late_overflow_max", overflow_max), {NULL, 0, 0, 0, NULL},
};

static PyObject *core_started(Core *c, void *closure)
{
    return PyBool_FromLong(c->has_anchor);
}

static PyGetSetDef core_getset[] = {
    {"started", (getter)core_started, NULL, "Whether departure 0 is anchored.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rawpacer._pace.Core",
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A pacer's state and rules (see the module comment).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)core_init,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_methods = core_methods,
    .tp_members = core_members,
    .tp_getset = core_getset,
};

static PyMethodDef methods[] = {
    {"wait_until", (PyCFunction)(void (*)(void))wait_until, METH_FASTCALL,
     "wait_until(deadline_ns, spin_ns, /) -> (now_ns, slept_ns): sleep, then spin to a monotonic deadline."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "rawpacer._pace", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pace(void)
{
    if (PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
