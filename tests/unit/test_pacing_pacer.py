"""The pacer's rules on a fake clock: on time, no drift, catching up without bursts, stalls re-anchor.

Each rule test runs on both cores (the C one when it is built, and its pure-Python twin), driven
step by step on the fake clock, whose sleeps and spins end exactly at their deadline; a test moves
time forward itself to stand for the sends (``clock.t += ...``) or a stall. The real clock's waits
are checked for what they promise (never early; a signal still gets through), not for how precise
they are: that is the benchmark's job (benchmarks/pacing_bench.py).
"""

from __future__ import annotations

import math
import signal
import socket
import struct
import time

import numpy as np
import pytest

from rawpacer.errors import UsageError
from rawpacer.pacing import ConstantSchedule, MonotonicClock, Pacer, PoissonSchedule, sockaddr_in
from rawpacer.pacing.clock import DEFAULT_SPIN_NS, IMPLEMENTATION, SPIN_MIN_NS, python_wait_until
from rawpacer.pacing.pacer import DEFAULT_STALL_NS, START_LEAD_NS

GAP = 100_000  # 10k pps


CORES = sorted({"python", IMPLEMENTATION})
"""The pacer's cores here: pure Python always, C when the extension is built."""


class FakeClock:
    """Time stands still until a wait (to its deadline) or the test (``t += ...``) moves it."""

    def __init__(self, t: int = 10**12) -> None:
        self.t = t
        self.slept = 0

    def now(self) -> int:
        return self.t

    def sleep_until(self, deadline_ns: int) -> int:
        self.slept += max(0, deadline_ns - self.t)
        self.t = max(self.t, deadline_ns)
        return self.t

    def spin_until(self, deadline_ns: int) -> int:
        self.t = max(self.t, deadline_ns)
        return self.t


@pytest.fixture(params=CORES)
def core(request: pytest.FixtureRequest) -> str:
    """The core a rule test runs on."""
    return request.param


def run(pacer: Pacer, clock: FakeClock, n: int, send_ns: int = 0, delays: dict[int, int] | None = None) -> list[int]:
    """Departure times of n departures, each followed by a send of send_ns; delays[i] before wait(i)."""
    times = []
    for i in range(n):
        clock.t += (delays or {}).get(i, 0)
        pacer.wait(i)
        times.append(pacer.last_ns)
        clock.t += send_ns
    return times


def test_on_time_departures_follow_the_schedule_exactly(core):
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(10_000), clock=clock, implementation=core)
    t0 = clock.t + START_LEAD_NS
    times = run(pacer, clock, 1000, send_ns=3_000)
    assert times == [t0 + i * GAP for i in range(1000)], "absolute deadlines: the sends' time never accumulates"
    report = pacer.report()
    assert (report.departures, report.stalls, report.stalled_ns) == (1000, 0, 0)
    assert report.lateness_ns == {"p50": 0, "p99": 0, "max": 0}


def test_start_anchors_departure_zero_and_a_late_first_wait_anchors_itself(core):
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(1000), clock=clock, implementation=core)
    pacer.start(clock.t + 5_000_000)
    t0 = pacer.anchor_ns
    assert run(pacer, clock, 4)[::3] == [t0, t0 + 3_000_000]
    fresh = Pacer(ConstantSchedule(1000), clock=clock, implementation=core)
    now = clock.t
    fresh.wait(7)
    assert fresh.last_ns == now + START_LEAD_NS, "the first wait is due just ahead, whatever its index"
    fresh.wait(8)
    assert fresh.last_ns == now + START_LEAD_NS + 1_000_000
    fresh.start()
    assert fresh.anchor_ns == clock.t + START_LEAD_NS
    assert fresh.burst == 1 and Pacer(ConstantSchedule(1000, 8)).burst == 8


@pytest.mark.parametrize("delay", [5 * GAP // 2, 4_000_000])  # an interrupt; a 250 Hz scheduler slice
def test_lateness_is_caught_up_at_most_1_25_times_faster(delay, core):
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(10_000), clock=clock, implementation=core)
    t0 = clock.t + START_LEAD_NS
    n = 10 + 6 * delay // GAP
    times = run(pacer, clock, n, send_ns=2_000, delays={10: delay})
    assert times[10] == t0 + 9 * GAP + 2_000 + delay, "the late departure leaves at once"
    gaps = np.diff(times)
    assert gaps.min() >= GAP * 4 // 5, "no gap shorter than 1/1.25 of the schedule's: no burst"
    caught_up = [i for i in range(11, n) if times[i] == t0 + i * GAP]
    assert caught_up and caught_up == list(range(caught_up[0], n)), "back on the original grid, and staying there"
    assert times[-1] == t0 + (n - 1) * GAP, "the delay cost the stream's rate nothing"
    assert pacer.report().stalls == 0 and pacer.report().lateness_ns["max"] == delay + 2_000 - GAP


def test_catch_up_inf_catches_up_in_a_burst_and_1_never(core):
    for catch_up, shortest in ((math.inf, 0), (1, GAP)):
        clock = FakeClock()
        pacer = Pacer(ConstantSchedule(10_000), catch_up=catch_up, clock=clock, implementation=core)
        times = run(pacer, clock, 40, delays={10: 10 * GAP})
        assert np.diff(times)[10:].min() == shortest


def test_a_stall_re_anchors_and_is_counted_never_caught_up(core):
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(10_000), clock=clock, implementation=core)
    assert pacer.stall_ns == DEFAULT_STALL_NS
    t0 = clock.t + START_LEAD_NS
    stall = DEFAULT_STALL_NS + GAP
    times = run(pacer, clock, 30, send_ns=1_000, delays={10: stall})
    late = stall + 1_000 - GAP  # departure 10 was due GAP after 9 left; 9's send took 1 µs
    assert times[10] == t0 + 10 * GAP + late
    assert np.all(np.diff(times[10:]) == GAP), "after the stall, the old spacing from the new anchor: no burst"
    report = pacer.report()
    assert (report.stalls, report.stalled_ns, report.lateness_ns["max"]) == (1, late, late)


def test_stall_threshold_is_a_whole_gap_for_slow_rates(core):
    pacer = Pacer(ConstantSchedule(10), clock=FakeClock(), implementation=core)
    assert pacer.stall_ns == 100_000_000
    assert Pacer(ConstantSchedule(10), stall_ns=5, clock=FakeClock(), implementation=core).stall_ns == 5


def test_poisson_departures_keep_their_own_short_gaps_and_catch_up_in_proportion(core):
    clock = FakeClock()
    schedule = PoissonSchedule(10_000, seed=5)
    pacer = Pacer(schedule, clock=clock, implementation=core)
    t0 = clock.t + START_LEAD_NS
    assert run(pacer, clock, 3000) == [t0 + schedule.offset_ns(i) for i in range(3000)]
    clock = FakeClock()
    pacer = Pacer(schedule, clock=clock, implementation=core)
    times = run(pacer, clock, 3000, send_ns=500, delays={100: 3_000_000})
    scheduled = np.diff(schedule.offsets(0, 3000))
    assert np.all(np.diff(times)[100:] * 5 >= scheduled[100:] * 4 - 5), "each gap at least 1/1.25 of its own"
    t0 = times[0]
    assert times[-1] == t0 + schedule.offset_ns(2999), "caught up"


def test_bursts_leave_every_burst_gaps(core):
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(8000, 8), clock=clock, implementation=core)
    times = run(pacer, clock, 100, send_ns=20_000)
    assert set(np.diff(times).tolist()) == {1_000_000}


def test_cpu_time_is_the_time_awake_in_waits(core):
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(1000), spin_ns=50_000, clock=clock, implementation=core)
    run(pacer, clock, 101, send_ns=10_000)
    # Each wait sleeps to 50 µs before its deadline and spins the rest (the first one: of the lead).
    assert pacer.report().cpu_ns == 101 * 50_000
    assert clock.slept == 100 * (1_000_000 - 10_000 - 50_000) + START_LEAD_NS - 50_000


def test_report_as_dict_is_json_ready(core):
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(1000), clock=clock, implementation=core)
    run(pacer, clock, 10, delays={5: 1_300_000})  # departure 5 leaves 300 µs late
    fields = pacer.report().as_dict()
    assert fields["lateness_ns"] == {"p50": 0, "p99": 300_000, "max": 300_000}
    assert set(fields) >= {"departures", "stalls", "stalled_ns", "cpu_ns", "spin_ns", "stall_ns", "catch_up"}
    assert fields["implementation"] == "custom"


def test_a_pacer_that_never_waited_reports_no_lateness(core):
    report = Pacer(ConstantSchedule(1000), clock=FakeClock(), implementation=core).report()
    assert report.departures == 0 and report.lateness_ns == {"p50": None, "p99": None, "max": None}


def test_sockaddr_in_is_what_the_kernel_reads():
    family, port, address = struct.unpack_from("=H2s4s", sockaddr_in("198.18.0.2", 5001))
    assert (family, port, address) == (socket.AF_INET, (5001).to_bytes(2, "big"), socket.inet_aton("198.18.0.2"))
    assert len(sockaddr_in("198.18.0.2", 5001)) == 16


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("spin_ns", -1),
        ("spin_ns", 1.5),
        ("stall_ns", 0),
        ("stall_ns", True),
        ("catch_up", 0.5),
        ("catch_up", True),
        ("spin", "busy"),
    ],
)
def test_bad_pacer_settings(keyword, value):
    with pytest.raises(UsageError, match=f"^{keyword} {value!r} is not allowed"):
        Pacer(ConstantSchedule(1000), **{keyword: value})
    with pytest.raises(
        UsageError, match="^spin_ns 1000 fixes the margin of a pacer that sleeps; drop it or drop spin 'full'$"
    ):
        Pacer(ConstantSchedule(1000), spin="full", spin_ns=1000)


@pytest.mark.parametrize("implementation", sorted({"python", IMPLEMENTATION}))
def test_real_waits_are_never_early(implementation):
    clock = MonotonicClock(implementation)
    for spin in (0, 200_000, 10_000_000):
        deadline = clock.now() + 1_000_000
        now, slept = clock.wait_until(deadline, spin)
        assert now >= deadline and clock.now() >= now
        assert slept == 0 if spin >= 1_000_000 else slept > 0


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("implementation", sorted({"python", IMPLEMENTATION}))
def test_a_signal_interrupts_a_long_wait(implementation):
    clock = MonotonicClock(implementation)

    def handler(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        start = time.monotonic()
        with pytest.raises(Interrupted):
            clock.wait_until(clock.now() + 30 * 10**9, 0)
        assert time.monotonic() - start < 10, "Ctrl-C must not wait for the deadline"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_python_wait_until_is_the_fallback_twin():
    deadline = time.monotonic_ns() + 2_000_000
    now, slept = python_wait_until(deadline, 1_000_000)
    assert now >= deadline and slept > 0


def test_the_c_core_on_the_real_clock_sleeps_spins_and_records():
    """What the fake clock cannot show: the C loop's own waits (clock_nanosleep, then a spin) are
    never early, learn from real wake-ups, and feed real time to the rules (a 30 ms sleep of the
    caller's is a stall). The rules themselves are checked exactly on the fake clock above."""
    schedule = ConstantSchedule(1000)
    pacer = Pacer(schedule)
    assert pacer.implementation == "c" and pacer.anchor_ns is None
    for i in range(60):
        if i == 40:
            time.sleep(0.030)
        pacer.wait(i)
        assert pacer.last_ns >= pacer.anchor_ns + schedule.offset_ns(i), "never before its time"
    late = pacer.lateness()
    assert late.size == 60 and late.min() >= 0
    report = pacer.report()
    assert report.sleeps >= 1 and SPIN_MIN_NS <= report.spin_ns <= DEFAULT_SPIN_NS, "it slept and learned a margin"
    assert report.stalls >= 1 and report.stalled_ns >= 20_000_000, "the 30 ms sleep was a stall"
    assert pacer.schedule_lateness()[-1] >= report.stalled_ns, "which the intended schedule still shows"


def test_a_signal_interrupts_a_full_spin():
    def handler(signum, frame):
        raise Interrupted

    pacer = Pacer(ConstantSchedule(1000), spin="full")
    pacer.start(time.monotonic_ns() + 30 * 10**9)  # departure 0 due in 30 s, spun towards
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        start = time.monotonic()
        with pytest.raises(Interrupted):
            pacer.wait(0)
        assert time.monotonic() - start < 10, "Ctrl-C must not wait for the departure"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert pacer.report().departures == 0 and pacer.report().sleeps == 0


def test_the_c_core_reads_a_poisson_schedule_across_its_windows():
    schedule = PoissonSchedule(2_000_000, seed=3)
    pacer = Pacer(schedule)
    for i in range(20_000):  # > two 8192-departure windows
        pacer.wait(i)
        assert pacer.last_ns >= pacer.anchor_ns + schedule.offset_ns(i)
    assert pacer.report().departures == 20_000 and pacer.next_departure == 20_000


@pytest.mark.parametrize(("short", "stalls"), [(0, 1), (1, 0)])
def test_a_stall_starts_at_exactly_stall_ns_late(core, short, stalls):
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(10_000), clock=clock, implementation=core)
    run(pacer, clock, 20, delays={10: DEFAULT_STALL_NS + GAP - short})
    assert pacer.report().stalls == stalls


def test_schedule_lateness_shows_a_stall_in_every_departure_after_it(core):
    """Coordinated omission: re-anchored, the pacer is on time again; against the intended
    schedule every later departure is still the stall late."""
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(10_000), clock=clock, implementation=core)
    t0 = clock.t + START_LEAD_NS
    stall = 25_000_000
    times = run(pacer, clock, 30, delays={10: stall})
    late = stall - GAP  # departure 10 was due GAP after 9 left
    assert times[10] == t0 + 10 * GAP + late and pacer.origin_ns == t0 and pacer.anchor_ns == t0 + late
    assert pacer.lateness().tolist() == [0] * 10 + [late] + [0] * 19
    assert pacer.schedule_lateness().tolist() == [0] * 10 + [late] * 20
    report = pacer.report()
    assert (report.stalls, report.stalled_ns) == (1, late)
    assert report.lateness_ns == {"p50": 0, "p99": late, "max": late}
    assert report.schedule_lateness_ns == {"p50": late, "p99": late, "max": late}


def test_schedule_lateness_is_the_lateness_when_nothing_re_anchors(core):
    clock = FakeClock()
    pacer = Pacer(ConstantSchedule(10_000), clock=clock, implementation=core)
    run(pacer, clock, 100, send_ns=2_000, delays={10: 4_000_000})
    assert pacer.report().stalls == 0
    assert pacer.schedule_lateness().tolist() == pacer.lateness().tolist()
    assert pacer.report().schedule_lateness_ns["max"] == 4_000_000 + 2_000 - GAP


def test_a_stall_right_after_a_late_departure_still_keeps_the_gap(core):
    """A departure that leaves very late (its wait preempted for 30 ms) makes the next one a stall;
    re-anchored, that one leaves no sooner than 1/1.25 of its gap after the late one: no burst."""

    class PreemptedClock(FakeClock):
        preempt = 0

        def spin_until(self, deadline_ns: int) -> int:
            self.t, self.preempt = max(self.t, deadline_ns) + self.preempt, 0
            return self.t

    clock = PreemptedClock()
    pacer = Pacer(ConstantSchedule(10_000), clock=clock, implementation=core)
    run(pacer, clock, 5)
    clock.preempt = 30_000_000
    pacer.wait(5)
    late_one = pacer.last_ns
    pacer.wait(6)
    assert pacer.report().stalls == 1, "6 found itself 30 ms late"
    assert pacer.last_ns - late_one == GAP * 4 // 5, "but left 1/1.25 of a gap after 5"
    assert pacer.lateness()[6] == 30_000_000 - GAP + GAP * 4 // 5


def test_the_adaptive_margin_is_learned_from_wake_ups(core):
    """Sleep while more than the margin is left, spin for the rest; the margin is 3/2 of the
    highest overshoot of the last OVERSHOOT_WINDOW sleeps, within SPIN_MIN_NS .. the ceiling."""

    class LateClock(FakeClock):
        overshoot = 300_000

        def sleep_until(self, deadline_ns: int) -> int:
            return super().sleep_until(deadline_ns + self.overshoot)

    clock = LateClock()
    pacer = Pacer(ConstantSchedule(100), clock=clock, implementation=core)  # 10 ms gaps
    assert pacer.margin_ns == SPIN_MIN_NS
    times = run(pacer, clock, 3)
    assert times[1] == times[0] + 10_000_000 + 200_000, "the first sleep woke 200 µs past its 100 µs margin"
    assert pacer.margin_ns == 450_000 and times[2] == times[0] + 20_000_000, "on time once learned"
    clock.overshoot = 10**9  # a wake-up a second late: the margin stops at its ceiling
    run(pacer, clock, 5)
    assert pacer.margin_ns == DEFAULT_SPIN_NS and pacer.report().sleeps >= 3
    full = Pacer(ConstantSchedule(100), spin="full", clock=clock, implementation=core)
    run(full, clock, 5)
    assert full.report().sleeps == 0 and full.margin_ns is None and full.report().spin == "full"
