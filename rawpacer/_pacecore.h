/* The pacer's C core, shared by rawpacer._pace (its Python face: Core) and rawpacer.engine._engine
 * (which runs a Core's departures with its own back ends' sends): the real clock and its waits, the
 * pure rules (pace_step, time passed in), the Core object's layout, its schedule window and record,
 * and the paced loop (core_paced_loop) that waits for each departure and hands its datagrams to an
 * emit() callback. rawpacer/_pace.c's header comment documents the rules; both extensions include
 * this file, so there is one copy of them (a Core made by _pace is read by _engine through this
 * layout, after a type check against rawpacer._pace.Core). */
#ifndef RAWPACER_PACECORE_H
#define RAWPACER_PACECORE_H
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

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
static inline int sleep_abs(int64_t until)
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
static inline void pace_learn(Pace *p, int64_t over)
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
static inline int pace_go(Pace *p, int64_t now, int64_t *until)
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
static inline int pace_step(Pace *p, int64_t i, int64_t off, int64_t now, int64_t *until)
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
static inline int64_t pace_run(Pace *p, int64_t i, int64_t off, int act, int64_t until, int64_t now)
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
    int64_t burst, late_cap, late_stride;
    int64_t q, r, den;
    PyObject *schedule;
    PyObject *window_obj;
    Py_buffer window;
    int64_t win_start, win_len;
    int64_t sent, overflow_max, schedule_overflow_max;
    int64_t *late, *schedule_late;
    int64_t late_len, late_alloc;
} Core;

static inline void core_drop_window(Core *c)
{
    if (c->window_obj) {
        PyBuffer_Release(&c->window);
        Py_CLEAR(c->window_obj);
    }
    c->win_len = 0;
}

/* Make departure i's offset readable from the window (GIL held). */
static inline int core_fill_window(Core *c, int64_t i)
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
static inline int core_offset_of(Core *c, int64_t i, int64_t *off)
{
    if (!in_window(c, i) && core_fill_window(c, i) < 0)
        return -1;
    *off = core_offset(c, i);
    return 0;
}

/* The lateness of a departure that is not in the record: kept as the maxima only. */
static inline void core_overflow(Core *c, int64_t late, int64_t sched)
{
    if (late > c->overflow_max)
        c->overflow_max = late;
    if (sched > c->schedule_overflow_max)
        c->schedule_overflow_max = sched;
}

/* Keep the lateness of the departure that just left, a systematic sample of the whole stream in at
 * most late_cap entries: every late_stride-th departure; when the record is full, every other entry
 * goes (into the maxima) and the stride doubles. So the percentiles are the stream's, however long
 * it runs, in bounded memory. GIL not needed: raw allocator. */
static inline void core_record(Core *c)
{
    int64_t late = c->p.gone_late, sched = c->p.gone_schedule_late, n = c->p.departures - 1;
    if (n % c->late_stride) {
        core_overflow(c, late, sched);
        return;
    }
    if (c->late_len == c->late_cap && c->late_cap >= 2) {
        int64_t kept = 0;
        for (int64_t j = 0; j < c->late_len; j++) {
            if (j % 2) {
                core_overflow(c, c->late[j], c->schedule_late[j]);
                continue;
            }
            c->late[kept] = c->late[j];
            c->schedule_late[kept++] = c->schedule_late[j];
        }
        c->late_len = kept;
        c->late_stride *= 2;
        if (n % c->late_stride) {
            core_overflow(c, late, sched);
            return;
        }
    }
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
            c->late_cap = c->late_len; /* out of memory: sample within what there is */
        }
    }
    if (c->late_len >= c->late_cap) {
        core_overflow(c, late, sched);
        return;
    }
    c->late[c->late_len] = late;
    c->schedule_late[c->late_len++] = sched;
}

/* Take the GIL back to let signal handlers run, then release it again; -1 if one raised. */
static inline int check_signals(PyThreadState **ts, int64_t *checked)
{
    PyEval_RestoreThread(*ts);
    int rc = PyErr_CheckSignals();
    *ts = PyEval_SaveThread();
    *checked = now_ns();
    return rc;
}

/* Emit datagrams index .. index+n-1 of a paced loop (index counts every datagram the Core sent);
 * return how many left, with *err set to an errno when a send failed (0 if none). Runs without the GIL. */
typedef int (*core_emit_fn)(void *ctx, int64_t index, int n, int *err);

/* Run `count` more datagrams on the Core's schedule: wait for each departure (the GIL released),
 * then emit up to `burst` datagrams. 0, or -1 with a Python error set (a signal's handler raised,
 * or the schedule's window could not be read); *err: the errno of a failed emit (the loop stops). */
static inline int core_paced_loop(Core *c, int64_t count, core_emit_fn emit, void *ctx, int *err)
{
    int64_t goal = c->sent + count, checked = now_ns();
    int failed = 0;
    *err = 0;
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
        c->sent += emit(ctx, c->sent, n, err);
        if (*err)
            break;
        if (now - checked >= SIGNAL_CHECK_NS && (failed = check_signals(&ts, &checked) < 0))
            break;
    }
    PyEval_RestoreThread(ts);
    return failed ? -1 : 0;
}
#endif
