"""The C core and its pure-Python twin in lockstep: one fake clock, the same steps, exactly.

Both cores' ``step(departure, now_ns)`` is called with the same time at every step of generated
streams (constant or Poisson schedules, bursts, catch-up factors, each way of waiting), on a clock
whose sleeps wake late by drawn overshoots (or early, cut short by a signal), whose spins end a
little past their deadline, and whose departures are delayed before their wait by interrupts,
scheduler slices and stalls long enough to re-anchor. Every step's answer, and in the end every
record, must be the same. The rules themselves are checked in test_pacing_pacer.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rawpacer.pacing import ConstantSchedule, Pacer, PoissonSchedule, Schedule
from rawpacer.pacing.clock import IMPLEMENTATION
from rawpacer.pacing.pacer import GO, LATENESS_SAMPLES, SLEEP, SPIN, START_LEAD_NS

CORES = (IMPLEMENTATION, "python")
"""The C core (when it is built: else the twin against itself) and its twin."""
T0 = 10**12


@dataclass
class Scenario:
    schedule: Schedule
    spin: str
    spin_ns: int | None
    catch_up: float
    delays: dict[int, int]
    """Time that passes before departure i's wait (an interrupt, a slice, a stall)."""
    send_ns: int
    overshoots: list[int]
    """How late successive sleeps wake (cycled); a negative one ends the sleep early (a signal)."""
    spin_over: list[int]
    """How far past its deadline successive spins end (cycled)."""
    departures: int
    samples: int = LATENESS_SAMPLES
    """The lateness record's capacity (small ones: the sample thins out as the stream goes on)."""


delays = st.one_of(
    st.integers(0, 50_000),  # an interrupt
    st.integers(1_000_000, 8_000_000),  # scheduler slices: caught up
    st.integers(20_000_000, 60_000_000),  # a stall: re-anchored
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    rate = draw(st.sampled_from([10, 1000, 3000, 10_000, 100_000, 1_000_000]))
    burst = draw(st.integers(1, 8))
    if draw(st.booleans()):
        schedule: Schedule = ConstantSchedule(rate, burst)
    else:
        schedule = PoissonSchedule(rate, burst, seed=draw(st.integers(0, 2**32)))
    spin = draw(st.sampled_from(["adaptive", "full", "fixed"]))
    n = draw(st.integers(1, 250))
    return Scenario(
        schedule=schedule,
        spin="adaptive" if spin == "fixed" else spin,
        spin_ns=draw(st.integers(0, 2_000_000)) if spin == "fixed" else None,
        catch_up=draw(st.sampled_from([1.0, 1.25, 2.0, math.inf])),
        delays=draw(st.dictionaries(st.integers(0, n - 1), delays, max_size=6)),
        send_ns=draw(st.integers(0, 5_000)),
        overshoots=draw(st.lists(st.integers(-30_000, 3_000_000), min_size=1, max_size=40)),
        spin_over=draw(st.lists(st.integers(0, 200), min_size=1, max_size=10)),
        departures=n,
        samples=draw(st.sampled_from([LATENESS_SAMPLES, 0, 1, 2, 3, 8, 17])),
    )


def run_lockstep(s: Scenario) -> tuple[Pacer, Pacer, list[int]]:
    """Both cores through the scenario on one clock; the departure times."""
    pacers = [
        Pacer(
            s.schedule,
            spin=s.spin,
            spin_ns=s.spin_ns,
            catch_up=s.catch_up,
            implementation=core,
            lateness_samples=s.samples,
        )
        for core in CORES
    ]
    steps = [p.core.step for p in pacers]
    t, sleeps, spins, times = T0, 0, 0, []
    for i in range(s.departures):
        t += s.delays.get(i, 0)
        while True:
            answers = [step(i, t) for step in steps]
            assert answers[0] == answers[1], f"departure {i} at {t}: C {answers[0]}, Python {answers[1]}"
            action, until = answers[0]
            if action == GO:
                assert until == t
                break
            if action == SLEEP:
                over = s.overshoots[sleeps % len(s.overshoots)]
                sleeps += 1
                # Late, or cut short by a signal (but time moves on).
                t = until + over if over >= 0 else min(until, max(t + 1_000, until + over))
            else:
                assert action == SPIN and until > t
                t = until + s.spin_over[spins % len(s.spin_over)]
                spins += 1
        times.append(t)
        t += s.send_ns
    return pacers[0], pacers[1], times


@settings(max_examples=250, deadline=None)
@given(scenarios())
def test_the_c_core_and_its_twin_agree_step_by_step(s):
    c, py, times = run_lockstep(s)
    assert c.report().as_dict() | {"implementation": ""} == py.report().as_dict() | {"implementation": ""}
    assert np.array_equal(c.lateness(), py.lateness())
    assert np.array_equal(c.schedule_lateness(), py.schedule_lateness())
    for name in ("anchor_ns", "origin_ns", "last_ns", "next_departure", "margin_ns"):
        assert getattr(c, name) == getattr(py, name), name
    assert c.core.late_stride == py.core.late_stride
    assert c.origin_ns == T0 + s.delays.get(0, 0) + START_LEAD_NS - s.schedule.offset_ns(0)
    # What the record says, from the departure times alone: every stride-th departure, as many as fit
    intended = c.origin_ns + s.schedule.offsets(0, s.departures)
    every = (np.asarray(times) - intended)[:: c.core.late_stride]
    assert c.schedule_lateness().tolist() == every[: s.samples].tolist()
    assert s.samples >= 2 or c.core.late_stride == 1  # a record of 0 or 1 never thins, it overflows
    # the max is every departure's, kept or not
    assert c.report().schedule_lateness_ns["max"] == int((np.asarray(times) - intended).max())
    if c.core.late_stride > 1 or len(c.lateness()) < s.departures:
        return  # what follows reads every departure
    # Against the intended schedule, each departure is late by its own lateness plus the re-anchors before it.
    shift, stalls = c.schedule_lateness() - c.lateness(), c.report().stalls
    assert c.anchor_ns - c.origin_ns == c.report().stalled_ns >= shift[-1] >= 0
    assert np.all(np.diff(shift) >= 0) and np.count_nonzero(np.diff(shift, prepend=0)) in (stalls - 1, stalls)


def test_lockstep_sees_every_action_and_a_re_anchor():
    """One scripted scenario that certainly sleeps, spins, learns a margin and stalls."""
    s = Scenario(
        schedule=ConstantSchedule(1000),
        spin="adaptive",
        spin_ns=None,
        catch_up=1.25,
        delays={5: 3_000_000, 20: 30_000_000},
        send_ns=1_000,
        overshoots=[60_000, 80_000, 20_000],
        spin_over=[30],
        departures=60,
    )
    c, _, _ = run_lockstep(s)
    report = c.report()
    assert report.sleeps > 0 and report.stalls == 1 and report.cpu_ns > 0
    assert c.margin_ns == 120_000, "3/2 of the highest overshoot seen"
    assert report.schedule_lateness_ns["max"] >= report.stalled_ns > 0
    assert (SLEEP, SPIN) == (1, 2)
