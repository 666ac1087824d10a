/* rawpacer._pace: the pacer's rules as a pure core with time passed in, the real-clock loop that
 * drives it (waits with the GIL released), and a whole paced send loop.
 * rawpacer/pacing/pacer.py holds the pure-Python twin (PyCore) and documents the rules; the two
 * must agree step by step (tests/unit/test_pacing_lockstep.py runs them on one fake clock).
 * Times are CLOCK_MONOTONIC nanoseconds, the clock of time.monotonic_ns().
 *
 * The core, pace_step(), is pure: given departure i (its offset) and the time now, it says what to
 * do next: GO (the departure leaves now, recorded), SLEEP until a time, or SPIN until a time; then
 * it is called again with the time it is then. The real loop (pace_run) calls it with
 * clock_gettime() and sleeps with clock_nanosleep(); Core.step() lets a test call it with a fake
 * clock.
 *
 * wait_until(deadline_ns, spin_ns, /) -> (now_ns, slept_ns)
 *     Sleep until spin_ns before the deadline, then spin until it has passed, the GIL released
 *     (unless the deadline is under 20 us away); a signal's handler runs and the wait resumes.
 * sleep_until(deadline_ns, /) -> now_ns; spin_until(deadline_ns, /) -> now_ns
 *     One sleep (clock_nanosleep, TIMER_ABSTIME; a signal ends it early) or one spin, the GIL
 *     released: the real clock's two waits, for a core driven from Python.
 *
 * Core(spin_mode, spin_ns, spin_min_ns, window, stall_ns, gap_ppm, lead_ns, burst, late_cap, q,
 *      r, den, schedule, /)
 *     A pacer's state and rules. Departure i is due at anchor + offset(i): offset(i) = i*q +
 *     floor(i*r/den) when den > 0 (a constant schedule), else read from schedule.offsets(start,
 *     count) a window at a time (Poisson). The first departure anchors the schedule lead_ns ahead
 *     (the origin: the intended schedule); a departure found stall_ns or more late is a stall (it
 *     leaves at once, the anchor moves by its lateness, the stall is counted); otherwise it leaves
 *     at its time but no sooner after the previous departure than gap_ppm millionths of its
 *     scheduled gap. Waiting for it: sleep while more than the margin is left, then spin. The
 *     margin is spin_ns (spin_mode 1, fixed); none, never sleeping and spinning without PAUSE
 *     (spin_mode 2, full); or (spin_mode 0, adaptive) 3/2 of the highest wake-up overshoot of the
 *     last `window` sleeps, within spin_min_ns .. spin_ns, spin_min_ns before the first sleep.
 *     step(i, now_ns) -> (action, until_ns): action 0 GO, 1 SLEEP, 2 SPIN. wait(i): the same on
 *     the real clock. start(t0_ns=None) anchors departure 0 at t0_ns (default lead_ns from now).
 *     send(fd, frames, addresses, count) runs count datagrams of departures with the sends in C:
 *     datagram k (counted over every send) is frames[k % len(frames)], sent with sendto() to
 *     addresses[same index] (sockaddr bytes) or, when addresses is None, with send() on a
 *     connected or bound socket; a departure carries `burst` datagrams, more than one in one
 *     sendmmsg(). With sequence=(at, first) every datagram gets its stream sequence stamped at
 *     byte `at` of its frame (writable buffers; _sequence.h's field) before it leaves: the round of
 *     frames this call starts in carries `first`, each later round one more. Long waits and loops take the GIL back every 10 ms to let signal handlers run,
 *     so Ctrl-C stops them with the record up to date. lateness() / schedule_lateness() -> bytes:
 *     the int64 lateness of the first late_cap departures against the re-anchored schedule / the
 *     intended one. Read-only attributes: anchor_ns, origin_ns, last_ns, next_departure,
 *     departures, stalls, stalled_ns, busy_ns (time awake in waits: the pacer's CPU time), sent,
 *     margin_ns, sleeps, late_overflow_max, schedule_overflow_max.
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
/* Waits shorter than this spin with the GIL held: releasing and taking it back costs more. */
#define GIL_RELEASE_NS 20000
/* How often a long spin or send loop takes the GIL back to let signal handlers (Ctrl-C) run. */
#define SIGNAL_CHECK_NS 10000000
/* Departures a Poisson window holds. */
#define WINDOW 8192
/* The most wake-up overshoots the adaptive margin keeps. */
#define MAX_OVERSHOOTS 4096

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

/* Sleep (absolute) until `until`; 0, or EINTR when a signal cut it short. */
static int sleep_abs(int64_t until)
{
    struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
    return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Spin until `until` (PAUSE between clock reads unless `full`); the time it stopped at. */
static inline int64_t spin_abs(int64_t now, int64_t until, int full)
{
    if (full)
        while (now < until)
            now = now_ns();
    else
        while (now < until) {
            cpu_relax();
            now = now_ns();
        }
    return now;
}

/* Sleep until spin_ns before the deadline, then spin until it has passed. Returns the time it
 * returned at, or -1 when a signal cut the sleep short; *slept gets the time spent asleep. */
static int64_t wait_nogil(int64_t deadline, int64_t spin_ns, int64_t *slept)
{
    int64_t now = now_ns();
    *slept = 0;
    if (deadline - now > spin_ns) {
        int rc = sleep_abs(deadline - spin_ns);
        int64_t after = now_ns();
        *slept = after - now;
        if (rc == EINTR)
            return -1;
        now = after;
    }
    return spin_abs(now, deadline, 0);
}

static int one_int64(PyObject *const *args, Py_ssize_t nargs, const char *usage, int64_t *out)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    long long v = PyLong_AsLongLong(args[0]);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

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
    if (deadline - now < GIL_RELEASE_NS)
        return Py_BuildValue("(LL)", (long long)spin_abs(now, deadline, 0), 0LL);
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

static PyObject *sleep_until(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t deadline, now;
    int rc;
    if (one_int64(args, nargs, "sleep_until(deadline_ns) takes 1 argument", &deadline) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = sleep_abs(deadline);
    now = now_ns();
    Py_END_ALLOW_THREADS
    if (rc == EINTR && PyErr_CheckSignals() < 0)
        return NULL;
    return PyLong_FromLongLong(now);
}

static PyObject *spin_until(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t deadline, now = now_ns();
    if (one_int64(args, nargs, "spin_until(deadline_ns) takes 1 argument", &deadline) < 0)
        return NULL;
    while (deadline - now >= GIL_RELEASE_NS) {
        int64_t stop = deadline - now > SIGNAL_CHECK_NS ? now + SIGNAL_CHECK_NS : deadline;
        Py_BEGIN_ALLOW_THREADS
        now = spin_abs(now, stop, 0);
        Py_END_ALLOW_THREADS
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
    return PyLong_FromLongLong(spin_abs(now, deadline, 0));
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



/* ---- The pure core: state and rules, time passed in. pacing/pacer.py's PyCore is its twin. ---- */

enum { ACT_GO = 0, ACT_SLEEP = 1, ACT_SPIN = 2 };
enum { SPIN_ADAPTIVE = 0, SPIN_FIXED = 1, SPIN_FULL = 2 };

typedef struct {
    int64_t mode, spin, spin_min, window, stall, gap_ppm, lead;
    int64_t anchor, origin, last, prev_offset;
    int has_anchor, has_prev, waiting, sleeping;
    /* the departure being waited for */
    int64_t cur, cur_off, due, target, entry, slept, sleep_from, wake_at;
    /* what the last departure's GO recorded */
    int64_t gone_late, gone_schedule_late;
    /* the adaptive margin: the last `window` wake-up overshoots */
    int64_t overshoots[MAX_OVERSHOOTS];
    int64_t over_len, over_pos, margin, sleeps;
    int64_t next, departures, stalls, stalled, busy;
} Pace;

/* A sleep meant to end at wake_at ended `over` late: keep it, and set the margin from the highest
 * kept (3/2 of it, within spin_min .. spin). */
static void pace_learn(Pace *p, int64_t over)
{
    p->overshoots[p->over_pos] = over;
    p->over_pos = (p->over_pos + 1) % p->window;
    if (p->over_len < p->window)
        p->over_len++;
    int64_t high = 0;
    for (int64_t k = 0; k < p->over_len; k++)
        if (p->overshoots[k] > high)
            high = p->overshoots[k];
    int64_t margin = high + high / 2;
    p->margin = margin < p->spin_min ? p->spin_min : margin > p->spin ? p->spin : margin;
}

/* The departure being waited for leaves at `now`. */
static int pace_go(Pace *p, int64_t now, int64_t *until)
{
    p->busy += now - p->entry - p->slept;
    p->departures++;
    p->gone_late = now - p->due;
    p->gone_schedule_late = now - (p->origin + p->cur_off);
    p->last = now;
    p->prev_offset = p->cur_off;
    p->has_prev = 1;
    p->next = p->cur + 1;
    p->waiting = 0;
    *until = now;
    return ACT_GO;
}

/* Departure i (offset off) at time now: GO (it leaves now), SLEEP until *until, or SPIN until
 * *until; call again with the time it is then. */
static int pace_step(Pace *p, int64_t i, int64_t off, int64_t now, int64_t *until)
{
    if (!p->waiting || p->cur != i) {
        if (!p->has_anchor) {
            p->anchor = p->origin = now + p->lead - off;
            p->has_anchor = 1;
        }
        p->cur = i;
        p->cur_off = off;
        p->due = p->anchor + off;
        p->entry = now;
        p->slept = 0;
        p->sleeping = 0;
        p->target = p->due;
        if (now - p->due >= p->stall) { /* re-anchored: due now (its lateness is kept against p->due) */
            p->stalls++;
            p->stalled += now - p->due;
            p->anchor += now - p->due;
            p->target = now;
        }
        if (p->has_prev) {
            int64_t soonest = p->last + (int64_t)(((__int128)(off - p->prev_offset) * p->gap_ppm) / 1000000);
            if (soonest > p->target)
                p->target = soonest;
        }
        p->waiting = 1;
    } else if (p->sleeping) {
        p->sleeping = 0;
        p->slept += now - p->sleep_from;
        if (p->mode == SPIN_ADAPTIVE && now >= p->wake_at) /* not cut short by a signal */
            pace_learn(p, now - p->wake_at);
    }
    if (now >= p->target)
        return pace_go(p, now, until);
    if (p->mode != SPIN_FULL && p->target - now > p->margin) {
        p->sleeping = 1;
        p->sleep_from = now;
        p->wake_at = p->target - p->margin;
        p->sleeps++;
        *until = p->wake_at;
        return ACT_SLEEP;
    }
    *until = p->target;
    return ACT_SPIN;
}

/* Carry out `act` (from pace_step) and step on, on the real clock, until departure i leaves: its
 * time, or -1 when a signal cut a sleep short or a spin has run SIGNAL_CHECK_NS (take the GIL,
 * check signals, and step again: the wait resumes). The GIL must be released. */
static int64_t pace_run(Pace *p, int64_t i, int64_t off, int act, int64_t until, int64_t now)
{
    for (;;) {
        if (act == ACT_GO)
            return now;
        if (act == ACT_SLEEP) {
            int rc = sleep_abs(until);
            now = now_ns();
            if (rc == EINTR)
                return -1;
        } else {
            int64_t stop = until - now > SIGNAL_CHECK_NS ? now + SIGNAL_CHECK_NS : until;
            now = spin_abs(now, stop, p->mode == SPIN_FULL);
            if (now < until)
                return -1;
        }
        act = pace_step(p, i, off, now, &until);
    }
}

/* ---- The Core object: the pure core, its schedule, its record, and the real-clock loops. ---- */

typedef struct {
    PyObject_HEAD
    Pace p;
    int64_t burst, late_cap;
    int64_t q, r, den;
    PyObject *schedule;
    PyObject *window_obj;
    Py_buffer window;
    int64_t win_start, win_len;
    int64_t sent, overflow_max, schedule_overflow_max;
    int64_t *late, *schedule_late;
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
    PyMem_RawFree(c->schedule_late);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static int core_init(Core *c, PyObject *args, PyObject *kwds)
{
    long long v[12];
    PyObject *schedule;
    if (!PyArg_ParseTuple(args, "LLLLLLLLLLLLO:Core", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                          &v[8], &v[9], &v[10], &v[11], &schedule))
        return -1;
    if (v[0] < 0 || v[0] > 2 || v[1] < 0 || v[2] < 0 || v[2] > v[1] || v[3] < 1 || v[3] > MAX_OVERSHOOTS ||
        v[4] < 1 || v[5] < 0 || v[5] > 1000000 || v[6] < 0 || v[7] < 1 || v[7] > MAX_BURST || v[8] < 0 ||
        v[9] < 0 || v[10] < 0 || v[11] < 0 || (v[11] > 0 && v[10] >= v[11])) {
        PyErr_SetString(PyExc_ValueError,
                        "Core: spin_mode 0-2, 0 <= spin_min_ns <= spin_ns, window 1-4096, stall_ns >= 1, gap_ppm "
                        "0-1000000, lead_ns >= 0, burst 1-1024, late_cap >= 0, 0 <= r < den or den == 0");
        return -1;
    }
    memset(&c->p, 0, sizeof(c->p));
    c->p.mode = v[0], c->p.spin = v[1], c->p.spin_min = v[2], c->p.window = v[3];
    c->p.stall = v[4], c->p.gap_ppm = v[5], c->p.lead = v[6];
    c->p.margin = c->p.mode == SPIN_ADAPTIVE ? c->p.spin_min : c->p.spin;
    c->burst = v[7], c->late_cap = v[8], c->q = v[9], c->r = v[10], c->den = v[11];
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

/* Departure i's offset, reading the schedule's next window if needed (GIL held); -1 on error. */
static int core_offset_of(Core *c, int64_t i, int64_t *off)
{
    if (!in_window(c, i) && core_fill_window(c, i) < 0)
        return -1;
    *off = core_offset(c, i);
    return 0;
}

/* Keep the lateness of the departure that just left (GIL not needed: raw allocator). */
static void core_record(Core *c)
{
    int64_t late = c->p.gone_late, sched = c->p.gone_schedule_late;
    if (c->late_len == c->late_alloc && c->late_len < c->late_cap) {
        int64_t grow = c->late_alloc ? c->late_alloc * 2 : 4096;
        if (grow > c->late_cap)
            grow = c->late_cap;
        int64_t *more = PyMem_RawRealloc(c->late, (size_t)grow * sizeof(int64_t));
        if (more)
            c->late = more;
        int64_t *more_sched = more ? PyMem_RawRealloc(c->schedule_late, (size_t)grow * sizeof(int64_t)) : NULL;
        if (more_sched) {
            c->schedule_late = more_sched;
            c->late_alloc = grow;
        } else {
            c->late_cap = c->late_len; /* out of memory: keep the max from here on */
        }
    }
    if (c->late_len >= c->late_cap) {
        if (late > c->overflow_max)
            c->overflow_max = late;
        if (sched > c->schedule_overflow_max)
            c->schedule_overflow_max = sched;
        return;
    }
    c->late[c->late_len] = late;
    c->schedule_late[c->late_len++] = sched;
}

static PyObject *core_step(Core *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "step(departure, now_ns) takes 2 arguments");
        return NULL;
    }
    long long i = PyLong_AsLongLong(args[0]), now = PyLong_AsLongLong(args[1]);
    int64_t off, until;
    if (PyErr_Occurred() || core_offset_of(c, i, &off) < 0)
        return NULL;
    int act = pace_step(&c->p, i, off, now, &until);
    if (act == ACT_GO)
        core_record(c);
    return Py_BuildValue("(iL)", act, (long long)until);
}

static PyObject *core_wait(Core *c, PyObject *arg)
{
    long long i = PyLong_AsLongLong(arg);
    int64_t off, until, now = now_ns();
    if ((i == -1 && PyErr_Occurred()) || core_offset_of(c, i, &off) < 0)
        return NULL;
    int act = pace_step(&c->p, i, off, now, &until);
    if (act == ACT_SPIN && until - now < GIL_RELEASE_NS) {
        now = spin_abs(now, until, c->p.mode == SPIN_FULL);
        act = pace_step(&c->p, i, off, now, &until);
    }
    while (act != ACT_GO) {
        Py_BEGIN_ALLOW_THREADS
        now = pace_run(&c->p, i, off, act, until, now);
        Py_END_ALLOW_THREADS
        if (now >= 0)
            break;
        if (PyErr_CheckSignals() < 0)
            return NULL;
        now = now_ns();
        act = pace_step(&c->p, i, off, now, &until);
    }
    core_record(c);
    Py_RETURN_NONE;
}

static PyObject *core_start(Core *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "start(t0_ns=None) takes at most 1 argument");
        return NULL;
    }
    int64_t t0;
    if (nargs == 0 || args[0] == Py_None) {
        t0 = now_ns() + c->p.lead;
    } else {
        t0 = PyLong_AsLongLong(args[0]);
        if (t0 == -1 && PyErr_Occurred())
            return NULL;
    }
    c->p.anchor = c->p.origin = t0;
    c->p.has_anchor = 1;
    c->p.waiting = 0;
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
        int64_t i = c->p.next, off, until;
        if (!in_window(c, i)) {
            PyEval_RestoreThread(ts);
            failed = core_fill_window(c, i) < 0;
            ts = PyEval_SaveThread();
            if (failed)
                break;
        }
        off = core_offset(c, i);
        int64_t now = now_ns();
        int act = pace_step(&c->p, i, off, now, &until);
        now = pace_run(&c->p, i, off, act, until, now);
        if (now < 0) { /* a signal, or a long spin: let Python handle signals, then wait on */
            if ((failed = check_signals(&ts, &checked) < 0))
                break;
            continue;
        }
        core_record(c);
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

static PyObject *core_schedule_lateness(Core *c, PyObject *unused)
{
    return PyBytes_FromStringAndSize((const char *)c->schedule_late,
                                     (Py_ssize_t)(c->late_len * (int64_t)sizeof(int64_t)));
}

static PyMethodDef core_methods[] = {
    {"step", (PyCFunction)(void (*)(void))core_step, METH_FASTCALL,
     "step(departure, now_ns, /) -> (action, until_ns): the pure core, on a clock of the caller's."},
    {"wait", (PyCFunction)core_wait, METH_O, "wait(departure, /): return when it is due."},
    {"start", (PyCFunction)(void (*)(void))core_start, METH_FASTCALL, "start(t0_ns=None, /): anchor departure 0."},
    {"send", (PyCFunction)(void (*)(void))core_send, METH_FASTCALL,
     "send(fd, frames, addresses, count, sequence=None, /): count more datagrams, paced, the loop in C."},
    {"lateness", (PyCFunction)core_lateness, METH_NOARGS, "lateness() -> bytes: int64 lateness per departure."},
    {"schedule_lateness", (PyCFunction)core_schedule_lateness, METH_NOARGS,
     "schedule_lateness() -> bytes: int64 lateness per departure against the intended schedule."},
    {NULL, NULL, 0, NULL},
};

#define RO(name, field) {name, T_LONGLONG, offsetof(Core, field), READONLY, NULL}
static PyMemberDef core_members[] = {
    RO("anchor_ns", p.anchor), RO("origin_ns", p.origin), RO("last_ns", p.last), RO("next_departure", p.next),
    RO("departures", p.departures), RO("stalls", p.stalls), RO("stalled_ns", p.stalled), RO("busy_ns", p.busy),
    RO("margin_ns", p.margin), RO("sleeps", p.sleeps), RO("sent", sent), RO("late_overflow_max", overflow_max),
    RO("schedule_overflow_max", schedule_overflow_max), {NULL, 0, 0, 0, NULL},
};

static PyObject *core_started(Core *c, void *closure)
{
    return PyBool_FromLong(c->p.has_anchor);
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
    {"sleep_until", (PyCFunction)(void (*)(void))sleep_until, METH_FASTCALL,
     "sleep_until(deadline_ns, /) -> now_ns: one absolute sleep (a signal ends it early)."},
    {"spin_until", (PyCFunction)(void (*)(void))spin_until, METH_FASTCALL,
     "spin_until(deadline_ns, /) -> now_ns: spin on the clock until the deadline."},
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
