"""The one pacer every writer's stream loop uses: ``wait(i)`` returns when departure i is due.

Departure i is due at ``anchor + schedule.offset_ns(i)`` on the monotonic clock, computed from i,
so no error accumulates; the first departure is anchored ``START_LEAD_NS`` ahead (the origin: the
intended schedule). Two rules keep a late pacer honest:

- catch up without bursts: a departure leaves no sooner after the previous one than its
  scheduled gap divided by ``catch_up`` (1.25 by default, the headroom issue 12 asks of a
  writer), so a pacer that fell behind (an interrupt, a vCPU exit, a scheduler slice) runs at
  most 1.25x the rate until it is back on schedule, never in a burst, and the stream keeps its rate;
- a stall is not caught up: a departure found ``stall_ns`` or more past its time (20 ms, or one
  whole gap if that is longer: more than a few 4 ms scheduler slices) is due at once (or as soon
  as the rule above lets it leave), the schedule is re-anchored so that it is due now (later
  departures keep their spacing), and the stall is counted with its lateness.

Waiting for a departure, the pacer sleeps while more than a margin is left and spins for the
rest. The margin adapts (``spin="adaptive"``): 3/2 of the highest wake-up overshoot of the last
``OVERSHOOT_WINDOW`` sleeps, from ``SPIN_MIN_NS`` to ``DEFAULT_SPIN_NS``; ``spin="full"`` never
sleeps and spins without PAUSE, as sockperf does; ``spin_ns=N`` fixes it at N.

Every departure's lateness, against the re-anchored schedule and against the intended one (which
a re-anchor does not move, so a stall shows in every departure after it), and the time the pacer
spent awake in its waits (spinning: its CPU time, or an upper bound of it when the kernel
preempted the thread) are recorded for ``report()``.

    pacer = Pacer(ConstantSchedule(10_000))
    for i in range(n):
        pacer.wait(i)              # pacer.last_ns: when it returned
        writer.send_part(...)

The rules live in a pure core that takes the time as an argument: ``step(i, now_ns) -> (action,
until_ns)`` says GO (departure i leaves now), SLEEP or SPIN until a time, and is called again with
the time it is then. ``rawpacer._pace.Core`` is the C core (its ``wait`` runs the steps on the
real clock in one C call, ~0.2 µs); ``PyCore`` below is its pure-Python twin (when there is no
compiler). Either runs on any ``Clock`` (``Pacer(clock=...)``: the tests' fake one), driven by
``drive``. The transmit engine (``rawpacer.engine``) runs the same loop, sends included, on the C
core with the GIL released (``Pacer.loop_core``).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from rawpacer.errors import require
from rawpacer.pacing.clock import (
    DEFAULT_SPIN_NS,
    IMPLEMENTATION,
    OVERSHOOT_WINDOW,
    SPIN_MIN_NS,
    Clock,
    MonotonicClock,
)
from rawpacer.pacing.rate import DEFAULT_CATCH_UP, SPINS, catch_up_label
from rawpacer.pacing.schedule import ConstantSchedule, Schedule
from rawpacer.pacing.stats import percentiles

LATENESS_SAMPLES = 1 << 20
"""The most departures whose lateness is kept for the percentiles (2 x 8 MiB): a systematic sample of
every ``late_stride``-th departure, the stride doubling whenever the record fills (every other entry
then goes), so a stream of any length is sampled whole; those not kept count for the max."""

DEFAULT_STALL_NS = 20_000_000
"""Lateness from which a departure is a stall, not caught up (20 ms: five 4 ms scheduler slices at 250 Hz)."""

START_LEAD_NS = 100_000
"""How far ahead of the start the first departure is due (100 µs): it is then waited for like
every other, instead of leaving late by the time it takes to get going."""

GO, SLEEP, SPIN = 0, 1, 2
"""What a core's ``step`` says: the departure leaves now, or sleep, or spin, until a time."""

SPIN_MODES = {"adaptive": 0, "fixed": 1, "full": 2}
"""The cores' spin_mode numbers (``fixed``: ``Pacer(spin_ns=...)``)."""

if TYPE_CHECKING:
    from rawpacer._pace import Core as CCore


class PyCore:
    """The pacer's rules in pure Python, time passed in: the twin of ``_pace.Core``, step for step."""

    def __init__(
        self,
        schedule: Schedule,
        spin_mode: int,
        spin_ns: int,
        spin_min_ns: int,
        window: int,
        stall_ns: int,
        gap_ppm: int,
        late_cap: int = LATENESS_SAMPLES,
    ) -> None:
        self._offset = schedule.offset_ns
        self.spin_mode, self.spin_ns, self.spin_min_ns, self.window = spin_mode, spin_ns, spin_min_ns, window
        self.stall_ns, self.gap_ppm = stall_ns, gap_ppm
        self.anchor_ns = self.origin_ns = self.last_ns = self.prev_offset_ns = 0
        self.started = self._has_prev = self._waiting = self._sleeping = False
        self._cur = self._cur_off = self._due = self._target = self._entry = self._slept = 0
        self._sleep_from = self._wake_at = 0
        self._overshoots: list[int] = []
        self._over_pos = 0
        self.margin_ns = spin_min_ns if spin_mode == SPIN_MODES["adaptive"] else spin_ns
        self.next_departure = self.departures = self.stalls = self.stalled_ns = self.busy_ns = self.sleeps = 0
        self.late_overflow_max = self.schedule_overflow_max = 0
        self.late_cap, self.late_stride = late_cap, 1
        self._late = array("q")
        self._schedule_late = array("q")

    def start(self, t0_ns: int | None = None, /) -> None:
        """Anchor departure 0 at ``t0_ns`` (default: START_LEAD_NS from now, on the real clock)."""
        t0 = MonotonicClock("python").now() + START_LEAD_NS if t0_ns is None else int(t0_ns)
        self.anchor_ns = self.origin_ns = t0
        self.started, self._waiting = True, False

    def step(self, departure: int, now: int, /) -> tuple[int, int]:
        """Departure ``departure`` at time ``now``: (GO, now), (SLEEP, until) or (SPIN, until)."""
        if not self._waiting or self._cur != departure:
            offset = self._offset(departure)
            if not self.started:
                self.anchor_ns = self.origin_ns = now + START_LEAD_NS - offset
                self.started = True
            self._cur, self._cur_off, self._due = departure, offset, self.anchor_ns + offset
            self._entry, self._slept, self._sleeping = now, 0, False
            self._target = self._due
            late = now - self._due
            if late >= self.stall_ns:  # re-anchored: due now (its lateness is kept against _due)
                self.stalls += 1
                self.stalled_ns += late
                self.anchor_ns += late
                self._target = now
            if self._has_prev:
                soonest = self.last_ns + (offset - self.prev_offset_ns) * self.gap_ppm // 1_000_000
                self._target = max(self._target, soonest)
            self._waiting = True
        elif self._sleeping:
            self._sleeping = False
            self._slept += now - self._sleep_from
            if self.spin_mode == SPIN_MODES["adaptive"] and now >= self._wake_at:  # not cut short by a signal
                self._learn(now - self._wake_at)
        if now >= self._target:
            return self._go(now)
        if self.spin_mode != SPIN_MODES["full"] and self._target - now > self.margin_ns:
            self._sleeping, self._sleep_from, self._wake_at = True, now, self._target - self.margin_ns
            self.sleeps += 1
            return SLEEP, self._wake_at
        return SPIN, self._target

    def _learn(self, overshoot: int) -> None:
        """Keep a wake-up's overshoot; the margin is 3/2 of the highest kept, within its bounds."""
        if len(self._overshoots) < self.window:
            self._overshoots.append(overshoot)
        else:
            self._overshoots[self._over_pos] = overshoot
        self._over_pos = (self._over_pos + 1) % self.window
        high = max(self._overshoots)
        self.margin_ns = min(self.spin_ns, max(self.spin_min_ns, high + high // 2))

    def _go(self, now: int) -> tuple[int, int]:
        self.busy_ns += now - self._entry - self._slept
        self.departures += 1
        self._record(now - self._due, now - (self.origin_ns + self._cur_off))
        self.last_ns, self.prev_offset_ns, self._has_prev = now, self._cur_off, True
        self.next_departure, self._waiting = self._cur + 1, False
        return GO, now

    def _record(self, late: int, scheduled: int) -> None:
        """``_pacecore.h``'s core_record: every ``late_stride``-th departure's lateness, at most
        ``late_cap``; a full record keeps every other entry and doubles the stride."""
        n = self.departures - 1
        if n % self.late_stride == 0 and len(self._late) == self.late_cap >= 2:
            self._overflow(max(self._late[1::2]), max(self._schedule_late[1::2]))
            self._late, self._schedule_late = self._late[::2], self._schedule_late[::2]
            self.late_stride *= 2
        if n % self.late_stride or len(self._late) >= self.late_cap:
            self._overflow(late, scheduled)
            return
        self._late.append(late)
        self._schedule_late.append(scheduled)

    def _overflow(self, late: int, scheduled: int) -> None:
        self.late_overflow_max = max(self.late_overflow_max, late)
        self.schedule_overflow_max = max(self.schedule_overflow_max, scheduled)

    def lateness(self) -> bytes:
        """The int64 lateness (ns) of each recorded departure against the re-anchored schedule."""
        return self._late.tobytes()

    def schedule_lateness(self) -> bytes:
        """The int64 lateness (ns) of each recorded departure against the intended schedule."""
        return self._schedule_late.tobytes()


class Stepper(Protocol):
    """A core's pure step (``PyCore.step``, ``_pace.Core.step``)."""

    def __call__(self, departure: int, now: int, /) -> tuple[int, int]: ...


def drive(step: Stepper, clock: Clock) -> Callable[[int], None]:
    """A ``wait(departure)`` that runs a core's steps on ``clock``: sleep or spin as told until GO."""
    now_of, sleep_until, spin_until = clock.now, clock.sleep_until, clock.spin_until

    def wait(departure: int, /) -> None:
        now = now_of()
        while True:
            action, until = step(departure, now)
            if action == GO:
                return
            now = sleep_until(until) if action == SLEEP else spin_until(until)

    return wait


@dataclass(frozen=True, kw_only=True)
class PacerReport:
    """What a pacer did: departures, stalls (re-anchors), its CPU time, and how late departures left (ns).

    ``lateness_ns`` is against the re-anchored schedule (what the pacer aimed at), and
    ``schedule_lateness_ns`` against the intended one (a stall shows in every departure after it).
    The fields stand in the order of the JSON record (``as_dict``).
    """

    departures: int
    stalls: int
    stalled_ns: int
    cpu_ns: int
    lateness_ns: dict[str, int | None]
    schedule_lateness_ns: dict[str, int | None] | None = None
    spin: str = "fixed"
    spin_ns: int | None
    sleeps: int = 0
    stall_ns: int
    catch_up: float
    implementation: str

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready fields (the stream result's ``pacer`` entry): the schedule's
        lateness an empty object when there is none."""
        out = asdict(self)
        out["schedule_lateness_ns"] = dict(self.schedule_lateness_ns or {})
        out["catch_up"] = catch_up_label(self.catch_up)
        return out


class Pacer:
    """Holds a stream to ``schedule``; ``wait(i)`` for i = 0, 1, ... returns when departure i is due.

    It is the op loop's ``Departures`` (rawpacer.bench.oploop): ``burst``, ``start()``, ``wait(i)``.
    The C core runs it unless ``implementation="python"`` (or no compiler); on the real clock, or on
    ``clock`` (a test's), the same core driven step by step.
    """

    wait: Callable[[int], None]
    """Return when departure number ``departure`` is due (i never goes back); ``last_ns`` says when."""

    def __init__(
        self,
        schedule: Schedule,
        *,
        spin: str = "adaptive",
        spin_ns: int | None = None,
        stall_ns: int | None = None,
        catch_up: float = DEFAULT_CATCH_UP,
        clock: Clock | None = None,
        implementation: Literal["c", "python"] | None = None,
        lateness_samples: int = LATENESS_SAMPLES,
    ) -> None:
        if stall_ns is None:
            stall_ns = max(DEFAULT_STALL_NS, math.ceil(schedule.period_ns))
        require(spin in SPINS, f"spin {spin!r} is not allowed; use {' or '.join(SPINS)}")
        checks = [("stall_ns", stall_ns, 1)] + ([("spin_ns", spin_ns, 0)] if spin_ns is not None else [])
        for name, value, low in checks:
            require(
                isinstance(value, int) and not isinstance(value, bool) and value >= low,
                f"{name} {value!r} is not allowed; use {low} or more nanoseconds",
            )
        require(
            spin_ns is None or spin == "adaptive",
            f"spin_ns {spin_ns} fixes the margin of a pacer that sleeps; drop it or drop spin {spin!r}",
        )
        require(
            isinstance(catch_up, (int, float)) and not isinstance(catch_up, bool) and catch_up >= 1,
            f"catch_up {catch_up!r} is not allowed; use 1 (never faster) or more, inf for bursts",
        )
        require(
            isinstance(lateness_samples, int) and not isinstance(lateness_samples, bool) and lateness_samples >= 0,
            f"lateness_samples {lateness_samples!r} is not allowed; use 0 or more departures",
        )
        self.schedule = schedule
        self.spin = "fixed" if spin_ns is not None else spin
        """How the pacer waits: ``adaptive`` (the default), ``full`` or ``fixed`` (``spin_ns`` given)."""
        self.spin_ns = spin_ns if spin_ns is not None else DEFAULT_SPIN_NS
        """The fixed margin, or the adaptive margin's ceiling."""
        self.stall_ns = stall_ns
        """Lateness from which a departure is a stall and re-anchors the schedule."""
        self.catch_up = float(catch_up)
        """How much faster than the schedule a late pacer may run."""
        gap_ppm = round(1_000_000 / self.catch_up)
        core_implementation = implementation or IMPLEMENTATION
        mode = SPIN_MODES[self.spin]
        self.core: CCore | PyCore
        if core_implementation == "c":
            self.core = c_core = _c_core(schedule, mode, self.spin_ns, stall_ns, gap_ppm, lateness_samples)
        else:
            spin_min = min(SPIN_MIN_NS, self.spin_ns)
            self.core = PyCore(
                schedule, mode, self.spin_ns, spin_min, OVERSHOOT_WINDOW, stall_ns, gap_ppm, lateness_samples
            )
        self.clock = clock
        """The clock a test gave, or None: the real one."""
        if clock is None and core_implementation == "c":
            self.wait = c_core.wait
        else:
            self.wait = drive(self.core.step, clock if clock is not None else MonotonicClock("python"))
        self.implementation: str = core_implementation if clock is None else getattr(clock, "implementation", "custom")

    @property
    def loop_core(self) -> CCore | None:
        """The C core when this pacer runs on it on the real clock: the one a send loop in C (the
        transmit engine's) can be paced by; None for the Python twin or a test's clock."""
        return _loop_core(self.core) if self.clock is None else None

    @property
    def burst(self) -> int:
        """Datagrams that leave together at each departure (the schedule's)."""
        return self.schedule.burst

    def start(self, t0_ns: int | None = None) -> None:
        """Anchor departure 0 at ``t0_ns`` (default: START_LEAD_NS from now); else the first ``wait`` does."""
        if t0_ns is None and self.clock is not None:
            t0_ns = self.clock.now() + START_LEAD_NS
        self.core.start(t0_ns)

    @property
    def anchor_ns(self) -> int | None:
        """When departure 0 is (or would have been) due, after any re-anchoring; None before the start."""
        return self.core.anchor_ns if self.core.started else None

    @property
    def origin_ns(self) -> int | None:
        """When departure 0 was due on the intended schedule (never re-anchored); None before the start."""
        return self.core.origin_ns if self.core.started else None

    @property
    def last_ns(self) -> int:
        """When the last ``wait`` returned (its departure left)."""
        return self.core.last_ns

    @property
    def next_departure(self) -> int:
        """The departure after the last one waited for."""
        return self.core.next_departure

    @property
    def margin_ns(self) -> int | None:
        """How long before a deadline the pacer stops sleeping and spins now; None when it only spins."""
        return None if self.spin == "full" else self.core.margin_ns

    def lateness(self) -> npt.NDArray[np.int64]:
        """How late each recorded departure left against the re-anchored schedule, in ns (every
        ``core.late_stride``-th departure: ``LATENESS_SAMPLES``)."""
        return np.frombuffer(self.core.lateness(), dtype=np.int64)

    def schedule_lateness(self) -> npt.NDArray[np.int64]:
        """How late each recorded departure left against the intended schedule, in ns (never re-anchored)."""
        return np.frombuffer(self.core.schedule_lateness(), dtype=np.int64)

    def report(self) -> PacerReport:
        """Departures, stalls, the pacer's CPU time (awake in its waits) and lateness p50/p99/max, both ways."""
        keys = ("p50", "p99", "max")
        lateness: dict[str, int | None] = percentiles(self.lateness(), keys)
        scheduled: dict[str, int | None] = percentiles(self.schedule_lateness(), keys)
        if self.core.departures > len(self.lateness()):  # the max of those the sample left out too
            lateness["max"] = max(int(lateness["max"] or 0), self.core.late_overflow_max)
            scheduled["max"] = max(int(scheduled["max"] or 0), self.core.schedule_overflow_max)
        return PacerReport(
            departures=self.core.departures,
            stalls=self.core.stalls,
            stalled_ns=self.core.stalled_ns,
            cpu_ns=self.core.busy_ns,
            lateness_ns=lateness,
            spin_ns=self.margin_ns,
            stall_ns=self.stall_ns,
            catch_up=self.catch_up,
            implementation=self.implementation,
            spin=self.spin,
            sleeps=self.core.sleeps,
            schedule_lateness_ns=scheduled,
        )


def _c_core(schedule: Schedule, spin_mode: int, spin_ns: int, stall_ns: int, gap_ppm: int, samples: int) -> CCore:
    """The C core: a constant schedule's period as q + r/den ns, any other read from ``schedule``."""
    from rawpacer._pace import Core as CCore

    q, r, den = 0, 0, 0
    if isinstance(schedule, ConstantSchedule):
        period = schedule.period_ns
        q, r = divmod(period.numerator, period.denominator)
        den = period.denominator
    spin_min = min(SPIN_MIN_NS, spin_ns)
    return CCore(
        spin_mode, spin_ns, spin_min, OVERSHOOT_WINDOW, stall_ns, gap_ppm, START_LEAD_NS, schedule.burst,
        samples, q, r, den, schedule,
    )  # fmt: skip


def _loop_core(core: CCore | PyCore) -> CCore | None:
    """``core`` if it is the C core (which can run the send loop), else None."""
    try:
        from rawpacer._pace import Core as CCore
    except ImportError:
        return None
    return core if isinstance(core, CCore) else None
