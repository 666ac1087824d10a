"""MLRsearch (RFC 9971): NDR and PDR in one search, driven through the ``Device`` seam.

RFC 2544's throughput is a binary search for one loss ratio (zero). MLRsearch, as FD.io CSIT runs it,
looks for several at once: the Non-Drop Rate (NDR, loss ratio 0) and the Partial Drop Rate (PDR, loss
ratio ``--pdr``, 0.5 % by default), reusing every trial for both, starting with short trials and
lengthening them as the bounds close in. rawpacer uses the PyPI ``MLRsearch`` package (CSIT's own
implementation, pure Python, no dependencies): its measurer interface, ``measure(intended_duration,
intended_load)`` returning the counts of one trial, is exactly one ``Device.run`` of a paced trial, so
the same code drives the live sandbox and ``SyntheticDevice``. The package reads the monotonic clock
only to enforce its own search time limit, which is set out of reach here.

The goals, per RFC 9971 section 5 and CSIT's defaults: exceed ratio 0.5 (a load is a lower bound when
at most half of its trial time at the final duration was bad), a duration sum of two final trials of
``trial_s`` (``BOUND_TRIALS``), initial trials of at most 1 s, width ``resolution`` of the upper
bound. What a writer could not offer in the trial's time counts as unsent, which the package counts as
bad (``counts``): a load the writer cannot offer must not become a lower bound. Each figure is the relevant lower bound's load (the
offered rate that met the goal); the conditional throughput (that load less its loss, RFC 9971
section 4.8) is kept beside it. The rates above each figure decide its mark as ``search.limited_by`` does
for RFC 2544's throughput (``search.limited_by``): ``dut`` when the lowest bad trial above it saw the DUT drop datagrams.

Latency, as CSIT reports it, is measured after the search at 10, 50 and 90 % of the PDR.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rawpacer.bench.rfc2544_suite.latency import LatencyStats, pool
from rawpacer.bench.rfc2544_suite.options import Settings
from rawpacer.bench.rfc2544_suite.search import OnTrial, Searched, Step, Trials, limited_by
from rawpacer.bench.rfc2544_suite.sizes import FrameSize
from rawpacer.bench.rfc2544_suite.trial import Device, Outcome

if TYPE_CHECKING:
    from MLRsearch import MeasurementResult, SearchGoal

NDR_LOSS = 0.0
"""The NDR's loss ratio: none (RFC 9971 section 4.2; RFC 2544's throughput)."""

EXCEED_RATIO = 0.5
"""The share of a load's trial time that may be bad while it is still a lower bound (CSIT's default,
RFC 9971's example) ..."""

BOUND_TRIALS = 2
"""... of this many final trials (the goals' duration sum): one good trial makes a lower bound, an
upper bound takes two bad ones, so one trial spoiled by the host (a writer stalled by another
process: measured, it capped a tbf's NDR 5 % low) does not end the search below the DUT's limit."""

MAX_INITIAL_TRIAL_S = 1.0
"""The longest first trial of a search; later trials grow to the run's trial length (``--trial``)."""

MIN_LOAD_FRACTION = 0.001
"""The lowest load the search tries is at least this fraction of the writer's unpaced maximum ..."""

PDR_LOSSES_PER_TRIAL = 40
"""... and carries, in one trial of the run's length, at least this many datagrams over the PDR's loss
ratio (8,000 at 0.5 %), so that a trial at the PDR's loss would lose 40 of them. With fewer, a lucky
trial of a DUT that loses at every rate passes as loss-free, and one good trial makes a lower bound
(``BOUND_TRIALS``): at 0.1 % loss, 37 % of 1,000-datagram trials lose nothing (measured:
``--dut drop:0.001`` gave an "NDR" of 285 pps from one such trial), 1.8 % of 4,000-datagram ones (the
floor was 20 losses; measured: an "NDR" of 2,000 pps from the one loss-free 2 s trial among five),
0.03 % of 8,000-datagram ones. A loss there makes the goal's figure unreachable (None). FD.io CSIT's
own floor is alike: 9,001 pps with 1 s trials."""

MAX_MIN_LOAD_FRACTION = 0.5
"""The floor never rises above half the writer's maximum, whatever the trial length."""

SEARCH_TIME_LIMIT_S = 10.0**9
"""The package stops a search that runs longer than this (by its clock); out of reach on purpose."""

LATENCY_FRACTIONS = (0.1, 0.5, 0.9)
"""Where latency is measured after the search, as fractions of the PDR (FD.io CSIT's 10, 50, 90 %)."""


@dataclass(frozen=True)
class Goal:
    """One goal's figures: the offered load that met it (``rate_pps``, None: not even the lowest load
    did), its conditional throughput, the lowest load that did not (``upper_pps``) and the mark."""

    loss_ratio: float
    rate_pps: float | None
    conditional_pps: float | None
    upper_pps: float | None
    limited_by: str | None


@dataclass
class MlrResult(Searched):
    """What one MLRsearch found: NDR and PDR, and the latency at 10, 50 and 90 % of the PDR
    (keyed ``"10"``, ``"50"``, ``"90"``; only those measured)."""

    max_pps: float
    ndr: Goal | None = None
    pdr: Goal | None = None
    latency: dict[str, LatencyStats] = field(default_factory=dict)
    latency_rates: dict[str, float] = field(default_factory=dict)


class _Measurer:
    """MLRsearch's measurer: one paced trial on the device per call, its verdict kept in ``trials``. It
    has the one method of the package's ``AbstractMeasurer`` without subclassing it, so that the
    package is imported only when a search runs: importing it costs 0.1-0.6 s (its dataclass
    properties walk the importer's stack), which every ``rawpacer`` command paid before."""

    def __init__(self, trials: Trials, frame: FrameSize) -> None:
        self.trials = trials
        self.frame = frame

    def measure(self, intended_duration: float, intended_load: float) -> MeasurementResult:
        """Run one paced trial; report what it offered in the intended time and what it lost."""
        settings = dataclasses.replace(self.trials.settings, trial_s=float(intended_duration))
        step = self.trials.run(settings.paced("throughput", self.frame, float(intended_load)), loss_tolerance=0.0)
        return counts(step, float(intended_duration))


def counts(step: Step, duration_s: float) -> MeasurementResult:
    """A trial as MLRsearch counts it: intended, offered (sent) and lost datagrams. A writer that fell
    short of the rate (``Outcome.WRITER``) is taken to have offered only what it sent at its own rate in
    the intended time; the rest is unsent, which the package counts as bad (its ``loss_ratio``), so the
    search moves below what the writer can offer instead of taking the shortfall for a passing load.
    A device may send more than planned (the live one rounds a trial up to whole fan-outs): that is the
    count intended then, not a surplus the package would count as bad."""
    from MLRsearch import MeasurementResult  # imported here, see _Measurer

    result = step.result
    planned = max(result.trial.planned, result.sent + result.not_sent)
    sent = result.sent
    if step.outcome is Outcome.WRITER and result.offered_pps is not None:
        sent = min(sent, math.floor(result.offered_pps * duration_s))
    lost = max(0, sent - min(result.intact, sent))
    return MeasurementResult(
        intended_duration=duration_s,
        intended_load=float(step.result.trial.rate_pps or 0.0),
        intended_count=planned,
        offered_count=sent,
        loss_count=lost,
    )


def goals(settings: Settings) -> tuple[SearchGoal, SearchGoal]:
    """The NDR and PDR goals for these settings (see the module's docstring)."""
    from MLRsearch import SearchGoal  # imported here, see _Measurer

    common = {
        "exceed_ratio": EXCEED_RATIO,
        "relative_width": settings.resolution,
        "initial_trial_duration": min(MAX_INITIAL_TRIAL_S, settings.trial_s),
        "final_trial_duration": settings.trial_s,
        "duration_sum": BOUND_TRIALS * settings.trial_s,
        "fail_fast": False,
    }
    return SearchGoal(loss_ratio=NDR_LOSS, **common), SearchGoal(loss_ratio=settings.pdr, **common)


def _rejudged(steps: list[Step], loss_ratio: float, settings: Settings) -> list[Step]:
    """The trials judged against a goal's loss ratio (each trial serves both goals)."""
    return [Step(s.result, s.result.outcome(loss_ratio, settings.shortfall)) for s in steps]


def _goal(found: object, loss_ratio: float, steps: list[Step], settings: Settings) -> Goal:
    """A Goal from the package's GoalResult (its relevant bounds), marked from the trials above it."""
    lower = getattr(found, "relevant_lower_bound", None)
    upper = getattr(found, "relevant_upper_bound", None)
    conditional = getattr(found, "conditional_throughput", None)
    rate = None if lower is None else float(lower.float_load)
    judged = _rejudged(steps, loss_ratio, settings)
    return Goal(
        loss_ratio=loss_ratio,
        rate_pps=rate,
        conditional_pps=None if conditional is None else float(conditional),
        upper_pps=None if upper is None else float(upper.float_load),
        limited_by=limited_by(judged, rate or 0.0),
    )


def min_load(max_pps: float, settings: Settings) -> float:
    """The lowest load the search tries (see PDR_LOSSES_PER_TRIAL)."""
    enough = PDR_LOSSES_PER_TRIAL / settings.pdr / settings.trial_s
    return min(max_pps * MAX_MIN_LOAD_FRACTION, max(max_pps * MIN_LOAD_FRACTION, enough))


def mlr_search(
    device: Device, frame: FrameSize, max_pps: float, settings: Settings, on_trial: OnTrial | None = None
) -> MlrResult:
    """NDR and PDR by MLRsearch between ``min_load`` and ``max_pps``; then, when
    ``settings.tests`` has latency and a PDR was found, latency at LATENCY_FRACTIONS of it."""
    from MLRsearch import Config, MultipleLossRatioSearch  # imported here, see _Measurer

    trials = Trials(device, settings, on_trial)
    found = MlrResult(max_pps, steps=trials.steps)
    ndr_goal, pdr_goal = goals(settings)
    config = Config()
    config.goals = (ndr_goal, pdr_goal)
    config.max_load = max_pps
    config.min_load = min_load(max_pps, settings)
    config.search_duration_max = SEARCH_TIME_LIMIT_S
    config.warmup_duration = None  # the device warms up before every trial (Settings.warmup_s)
    results: Mapping[object, object] = MultipleLossRatioSearch(config).search(_Measurer(trials, frame))
    searched = list(trials.steps)
    found.ndr = _goal(results[ndr_goal], NDR_LOSS, searched, settings)
    found.pdr = _goal(results[pdr_goal], settings.pdr, searched, settings)
    for goal, name in ((found.ndr, "NDR"), (found.pdr, f"PDR ({settings.pdr:.3%} loss)")):
        if goal.rate_pps is None and goal.limited_by == "writer":
            found.notes.append(
                f"{name} not found: the writer could not offer even the lowest rates tried (a busy host?)"
            )
        elif goal.rate_pps is None:
            found.notes.append(f"{name} unreachable: even {config.min_load:.6g} pps lost more than the goal allows")
    if "latency" in settings.tests and found.pdr.rate_pps is not None:
        for fraction in LATENCY_FRACTIONS:
            rate = found.pdr.rate_pps * fraction
            key = f"{round(fraction * 100)}"
            ran = [
                trials.run(settings.paced("latency", frame, rate, latency=True)) for _ in range(settings.latency_trials)
            ]
            stats = pool(
                (s.result.latencies_ns for s in ran if s.result.latencies_ns is not None),
                (s.result.latency_source for s in ran),
            )
            if stats is not None:
                found.latency[key], found.latency_rates[key] = stats, rate
    return found


def mlr_trials(settings: Settings) -> int:
    """A progress bar's guess at one search's trials: a bisection's worth per goal, and the latency trials."""
    latency = len(LATENCY_FRACTIONS) * settings.latency_trials if "latency" in settings.tests else 0
    return 2 * math.ceil(math.log2(1 / settings.resolution)) + latency
