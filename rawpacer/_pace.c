/* rawpacer._pace: the pacer's clock primitives, and a whole paced departure loop, in C with the
 * GIL released. rawpacer/pacing/clock.py holds the pure-Python twin of wait_until; the departure
 * loop's Python twin is PacedSender's fallback loop (rawpacer/pacing/pacer.py).
 *
 * Times are CLOCK_MONOTONIC nanoseconds, the clock of Python's time.monotonic_ns().
 *
 * wait_until(deadline_ns, spin_ns, /) -> (now_ns, slept_ns)
 *     Sleep (clock_nanosleep, TIMER_ABSTIME) until spin_ns before the deadline, then spin on the
 *     clock until it has passed, the GIL released (unless the deadline is under 20 us away).
 *     Returns the time it returned at and how long it slept. A signal ends the sleep early; its
 *     Python handler runs (KeyboardInterrupt propagates) and the wait resumes if it returns.
 *
 * send_paced(fd, frames, addresses, offsets, late, state, first, count, /) -> (errno, interrupted)
 *     The Pacer's departure loop with the sends in it. `state` is an int64 array read and
 *     updated in place: [anchor_ns, last_ns, prev_offset_ns, spin_ns, stall_ns, gap_ppm, burst,
 *     stalls, stalled_ns, busy_ns, sent, departures] (the last five are added to), so that what
 *     left is on record even when a signal's exception is raised the moment the call returns.
 *     Departure j (j = 0 .. len(offsets)-1) is due at anchor_ns + offsets[j] and sends `burst`
 *     datagrams (fewer in the last one when count runs out): datagram k is frames[(first + k) %
 *     len(frames)], sent with sendto() to addresses[same index] (sockaddr bytes) or, when
 *     addresses is None, with send() on a connected or bound socket; a burst of more than one is
 *     one sendmmsg() call. The rules are the Pacer's (rawpacer/pacing/pacer.py): a departure
 *     found stall_ns or more past its time is a stall (it leaves now, the schedule is re-anchored,
 *     the stall counted); a less late one leaves at its time but no sooner than gap_ppm millionths
 *     of its scheduled gap (offsets[j] - prev_offset_ns; none before the first departure,
 *     prev_offset_ns = INT64_MIN) after the previous departure (last_ns), so that a pacer that fell
 *     behind catches up without bursts. late[j] receives how late departure j left (ns), busy_ns
 *     grows by the time spent awake waiting (the pacer's CPU time). Returns the errno of a failed
 *     send (0 if none) and whether a signal cut a sleep short (the caller returns to Python so
 *     that its handler runs).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

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

/* The buffers and addresses of one send_paced call, pinned while the GIL is released. */
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

static int pin(Pinned *p, PyObject *frames, PyObject *addrs)
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
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(fseq, i), &p->frames[i], PyBUF_SIMPLE) < 0)
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

/* Send datagrams first .. first+n-1 (indices into the pinned frames, wrapping); how many went,
 * with *err set to the errno of a failed call (0 if none). */
static int send_burst(int fd, const Pinned *p, Py_ssize_t first, int n, struct mmsghdr *msgs,
                      struct iovec *iov, int *err)
{
    *err = 0;
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

static int int64_array(PyObject *obj, Py_buffer *view, int writable)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    if (view->itemsize != 8 || !view->format || (strcmp(view->format, "q") && strcmp(view->format, "l"))) {
        PyErr_SetString(PyExc_ValueError, "offsets and late must be contiguous int64 arrays");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

enum { ANCHOR, LAST, PREV_OFFSET, SPIN, STALL, GAP_PPM, BURST, STALLS, STALLED, BUSY, SENT, DEPARTURES, STATE_LEN };

static PyObject *send_paced(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "send_paced(fd, frames, addresses, offsets, late, state, first, count) takes 8 arguments");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    Py_ssize_t first = PyLong_AsSsize_t(args[6]);
    Py_ssize_t count = PyLong_AsSsize_t(args[7]);
    if (PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT32_MAX || first < 0 || count < 0) {
        PyErr_SetString(PyExc_ValueError, "send_paced: fd must be a descriptor, first and count 0 or more");
        return NULL;
    }
    Py_buffer off, late, st;
    if (int64_array(args[3], &off, 0) < 0)
        return NULL;
    if (int64_array(args[4], &late, 1) < 0) {
        PyBuffer_Release(&off);
        return NULL;
    }
    if (int64_array(args[5], &st, 1) < 0) {
        PyBuffer_Release(&off);
        PyBuffer_Release(&late);
        return NULL;
    }
    PyObject *result = NULL;
    Pinned p;
    int64_t *state = st.buf;
    Py_ssize_t departures = off.len / 8;
    if (late.len / 8 < departures || st.len / 8 != STATE_LEN) {
        PyErr_SetString(PyExc_ValueError, "late needs one entry per offset, state exactly 12");
        goto release;
    }
    int64_t anchor = state[ANCHOR], last = state[LAST], prev = state[PREV_OFFSET], spin = state[SPIN];
    int64_t stall = state[STALL], gap_ppm = state[GAP_PPM], burst = state[BURST];
    if (burst < 1 || burst > MAX_BURST || spin < 0 || stall < 1 || gap_ppm < 0 || gap_ppm > 1000000) {
        PyErr_SetString(PyExc_ValueError, "state: burst must be 1-1024, spin_ns 0 or more, stall_ns 1 or more, "
                                          "gap_ppm 0-1000000");
        goto release;
    }
    if (pin(&p, args[1], args[2]) < 0)
        goto release;
    const int64_t *offsets = off.buf;
    int64_t *lateness = late.buf;
    struct mmsghdr msgs[MAX_BURST];
    struct iovec iov[MAX_BURST];
    Py_ssize_t sent = 0, j = 0;
    int64_t stalls = 0, stalled = 0, busy = 0;
    int err = 0, interrupted = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; j < departures && sent < count; j++) {
        int64_t entry = now_ns();
        int64_t due = anchor + offsets[j];
        int64_t now = entry, slept = 0;
        if (entry - due >= stall) {
            stalls++;
            stalled += entry - due;
            anchor += entry - due;
        } else {
            int64_t target = due;
            if (prev != INT64_MIN) {
                int64_t soonest = last + (offsets[j] - prev) * gap_ppm / 1000000;
                if (soonest > target)
                    target = soonest;
            }
            now = wait_nogil(target, spin, &slept);
            if (now < 0) {
                busy += now_ns() - entry - slept;
                interrupted = 1;
                break;
            }
            busy += now - entry - slept;
        }
        lateness[j] = now - due;
        last = now;
        prev = offsets[j];
        int n = (int)(count - sent < burst ? count - sent : burst);
        sent += send_burst((int)fd, &p, first + sent, n, msgs, iov, &err);
        if (err) {
            j++;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    state[ANCHOR] = anchor;
    state[LAST] = last;
    state[PREV_OFFSET] = prev;
    state[STALLS] += stalls;
    state[STALLED] += stalled;
    state[BUSY] += busy;
    state[SENT] += sent;
    state[DEPARTURES] += j;
    result = Py_BuildValue("(ii)", err, interrupted);
    unpin(&p);
release:
    PyBuffer_Release(&off);
    PyBuffer_Release(&late);
    PyBuffer_Release(&st);
    return result;
}

static PyMethodDef methods[] = {
    {"wait_until", (PyCFunction)(void (*)(void))wait_until, METH_FASTCALL,
     "wait_until(deadline_ns, spin_ns, /) -> (now_ns, slept_ns): sleep, then spin to a monotonic deadline."},
    {"send_paced", (PyCFunction)(void (*)(void))send_paced, METH_FASTCALL,
     "send_paced(fd, frames, addresses, offsets, late, state, first, count, /) -> (errno, interrupted): "
     "the Pacer's departure loop, sends included."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "rawpacer._pace", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pace(void)
{
    return PyModule_Create(&module);
}
