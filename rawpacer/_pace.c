/* rawpacer._pace: the pacer's rules as a pure core with time passed in, the real-clock loop that
 * drives it (waits with the GIL released). The paced send loop is the transmit engine's
 * (rawpacer.engine._engine, which paces its back ends' sends with this Core).
 * rawpacer/pacing/pacer.py holds the pure-Python twin (PyCore) and documents the rules; the two
 * must agree step by step (tests/unit/test_pacing_lockstep.py runs them on one fake clock).
 * Times are CLOCK_MONOTONIC nanoseconds, the clock of time.monotonic_ns(). The core itself, the
 * Core object's layout and the paced loop live in _pacecore.h, which rawpacer.engine._engine
 * includes too (its back ends' sends paced by the same Core); this file is their Python face.
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
 *     Long waits take the GIL back every 10 ms to let signal handlers run, so Ctrl-C stops them
 *     with the record up to date. lateness() / schedule_lateness() -> bytes:
 *     the int64 lateness against the re-anchored schedule / the intended one of every
 *     late_stride-th departure, at most late_cap of them (a full record drops every other entry
 *     and doubles the stride: a systematic sample of the whole stream). Read-only attributes:
 *     anchor_ns, origin_ns, last_ns, next_departure, departures, stalls, stalled_ns, busy_ns (time
 *     awake in waits: the pacer's CPU time), sent (datagrams the engine's paced loop sent with
 *     this core), margin_ns, sleeps, late_stride, late_overflow_max, schedule_overflow_max (the
 *     highest lateness of the departures not in the record).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_pacecore.h"
#include "_pymodule.h"

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

static void core_dealloc(Core *c)
{
    core_drop_window(c);
    Py_XDECREF(c->schedule);
    FREE_ALL(PyMem_RawFree, c->late, c->schedule_late);
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
    c->burst = v[7], c->late_cap = v[8], c->late_stride = 1, c->q = v[9], c->r = v[10], c->den = v[11];
    Py_INCREF(schedule);
    Py_XSETREF(c->schedule, schedule);
    return 0;
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
    FASTCALL("step", core_step,
             "step(departure, now_ns, /) -> (action, until_ns): the pure core, on a clock of the caller's."),
    {"wait", (PyCFunction)core_wait, METH_O, "wait(departure, /): return when it is due."},
    FASTCALL("start", core_start, "start(t0_ns=None, /): anchor departure 0."),
    {"lateness", (PyCFunction)core_lateness, METH_NOARGS, "lateness() -> bytes: int64 lateness per departure."},
    {"schedule_lateness", (PyCFunction)core_schedule_lateness, METH_NOARGS,
     "schedule_lateness() -> bytes: int64 lateness per departure against the intended schedule."},
    {NULL, NULL, 0, NULL},
};

#define RO(name, field) RO_INT64(Core, name, field, NULL)
static PyMemberDef core_members[] = {
    RO("anchor_ns", p.anchor), RO("origin_ns", p.origin), RO("last_ns", p.last), RO("next_departure", p.next),
    RO("departures", p.departures), RO("stalls", p.stalls), RO("stalled_ns", p.stalled), RO("busy_ns", p.busy),
    RO("margin_ns", p.margin), RO("sleeps", p.sleeps), RO("sent", sent), RO("late_overflow_max", overflow_max),
    RO("schedule_overflow_max", schedule_overflow_max), RO("late_stride", late_stride), {NULL, 0, 0, 0, NULL},
};

static PyObject *core_started(Core *c, void *closure)
{
    return PyBool_FromLong(c->p.has_anchor);
}

static PyGetSetDef core_getset[] = {
    GETTER("started", core_started, "Whether departure 0 is anchored."),
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CoreType = {
    TYPE_HEAD("rawpacer._pace.Core", Core, "A pacer's state and rules (see the module comment)."),
    LIFECYCLE(core_init, core_dealloc),
    .tp_methods = core_methods,
    .tp_members = core_members,
    .tp_getset = core_getset,
};

static PyMethodDef methods[] = {
    FASTCALL("wait_until", wait_until,
             "wait_until(deadline_ns, spin_ns, /) -> (now_ns, slept_ns): sleep, then spin to a monotonic deadline."),
    FASTCALL("sleep_until", sleep_until,
             "sleep_until(deadline_ns, /) -> now_ns: one absolute sleep (a signal ends it early)."),
    FASTCALL("spin_until", spin_until, "spin_until(deadline_ns, /) -> now_ns: spin on the clock until the deadline."),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = MODULE_DEF("rawpacer._pace", NULL, methods);

PyMODINIT_FUNC PyInit__pace(void)
{
    return module_create(&module, NULL, (PyTypeObject *[]){&CoreType, NULL});
}
