"""The four RFC 2544 searches (section 26), pure: each drives a ``Device`` and returns what it found.

No search sleeps, opens a socket or reads a clock: every datagram goes through ``Device.run``, so the
same code runs against the live sandbox and against ``SyntheticDevice`` in the unit tests.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from rawpacer.bench.rfc2544_suite.latency import LatencyStats, pool
from rawpacer.bench.rfc2544_suite.options import Settings, bisection_steps
from rawpacer.bench.rfc2544_suite.sizes import FrameSize
from rawpacer.bench.rfc2544_suite.trial import Device, Outcome, Trial, TrialResult

LOSS_FREE_STEPS = 2
DELIVERED_MARGIN = 0.02
"""A lossy throughput trial bounds the search from above at the rate it delivered, plus this margin:
a device that loses at an offered rate delivered about its capacity there, and it passes nothing much
above that (a shaper, a policer: both deliver their rate whatever is offered above it). Without the
bound, the halvings' resolution is a fraction of the writer's maximum, which can be many times a
shaping DUT's rate (200 Mbit/s of 1518-byte frames is 16.5k/s; a writer reaches 300k/s)."""
"""RFC 2544 26.3: the frame loss rate steps down until two successive trials lose nothing."""

OnTrial = Callable[[TrialResult, Outcome], None]
"""Called after every trial, in order: how results reach the JSON file and the progress bar."""


@dataclass(frozen=True)
class Step:
    """One trial a search ran, and its verdict."""

    result: TrialResult
    outcome: Outcome

    @property
    def passed(self) -> bool:
        """True when the trial passed (see ``TrialResult.outcome``)."""
        return self.outcome is Outcome.PASS


class Trials:
    """Runs trials on a device, judges each with the run's tolerance, keeps them and reports each one."""

    def __init__(self, device: Device, settings: Settings, on_trial: OnTrial | None = None) -> None:
        self.device = device
        self.settings = settings
        self.on_trial = on_trial
        self.steps: list[Step] = []

    def run(self, trial: Trial, loss_tolerance: float | None = None) -> Step:
        """Run ``trial``; PASS needs loss within ``loss_tolerance`` (the run's own when None)."""
        result = self.device.run(trial)
        tolerance = self.settings.loss_tolerance if loss_tolerance is None else loss_tolerance
        step = Step(result, result.outcome(tolerance, self.settings.shortfall))
        self.steps.append(step)
        if self.on_trial is not None:
            self.on_trial(step.result, step.outcome)
        return step


@dataclass(kw_only=True)
class Searched:
    """What every search returns beside its figures: the trials it ran, in order, and its notes."""

    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ThroughputResult(Searched):
    """RFC 2544 26.1: the highest paced rate that delivered every datagram intact, twice.

    ``rate_pps`` is None when no rate held twice. ``limited_by`` names what stopped the search above it:
    ``dut`` (a device under test dropped datagrams, as its own counters say), ``loss`` (datagrams were
    lost elsewhere: the receive path, or the readers when reader-bound) or ``writer`` (the writer could
    not offer the next rate, or the search reached its unpaced maximum).
    """

    max_pps: float
    rate_pps: float | None = None
    candidate_pps: float | None = None
    confirmed: bool = False
    limited_by: str | None = None


def limited_by(steps: list[Step], above: float) -> str | None:
    """What stopped a search above ``above`` pps: the lowest failed trial above it says. ``dut`` when the
    DUT's own counters dropped datagrams there, even if the writer also fell short of the rate (what it
    did offer was already more than the DUT passed); else ``writer`` when none failed there or the
    writer fell short; else ``loss``."""
    failures = [s for s in steps if not s.passed and (s.result.trial.rate_pps or 0.0) > above]
    if not failures:
        return "writer"
    lowest = min(failures, key=lambda s: s.result.trial.rate_pps or 0.0)
    if lowest.result.dut_drops > 0:
        return "dut"
    return "writer" if lowest.outcome is Outcome.WRITER else "loss"


def throughput_trials(resolution: float) -> int:
    """The most trials one throughput search takes: ⌈log2(1/resolution)⌉ halvings, a repeat, a fallback."""
    return bisection_steps(resolution) + 2


def throughput(
    device: Device, frame: FrameSize, max_pps: float, settings: Settings, on_trial: OnTrial | None = None
) -> ThroughputResult:
    """Binary search over the paced rate in (0, max_pps), then confirm the figure by repeating it.

    A trial that lost datagrams also lowers the top of the search to the rate it delivered (plus
    ``DELIVERED_MARGIN``), so the halvings resolve a device's rate, not the writer's maximum.

    ⌈log2(1/resolution)⌉ halvings leave the passing rate within ``resolution`` of max below the first
    failing one; one more trial repeats it. Should that fail, the next lower rate that passed is tried
    once more; so a search takes at most ⌈log2(1/resolution)⌉ + 2 trials and reports a rate that held twice.
    """
    trials = Trials(device, settings, on_trial)
    found = ThroughputResult(max_pps, steps=trials.steps)
    low, high = 0.0, max_pps
    passed: list[float] = []
    for _ in range(bisection_steps(settings.resolution)):
        rate = (low + high) / 2
        step = trials.run(settings.paced("throughput", frame, rate))
        if step.passed:
            low = rate
            passed.append(rate)
        else:
            high = rate
            delivered = step.result.delivered_pps
            if step.outcome is Outcome.LOSS and delivered is not None and delivered * (1 + DELIVERED_MARGIN) > low:
                high = min(high, delivered * (1 + DELIVERED_MARGIN))
    if not passed:
        found.limited_by = limited_by(trials.steps, 0.0)
        found.notes.append(f"no rate down to {high:.6g} pps delivered every datagram intact")
        return found
    found.candidate_pps = passed[-1]
    for rate in reversed(passed[-2:]):
        if trials.run(settings.paced("throughput", frame, rate)).passed:
            found.rate_pps, found.confirmed = rate, True
            found.limited_by = limited_by(trials.steps, rate)
            if rate != found.candidate_pps:
                found.notes.append(f"{found.candidate_pps:.6g} pps did not hold on repeat; {rate:.6g} pps held twice")
            return found
    found.limited_by = limited_by(trials.steps, 0.0)
    found.notes.append(f"no rate held twice (the search's figure was {found.candidate_pps:.6g} pps): a noisy machine?")
    return found


@dataclass
class LatencyResult(Searched):
    """RFC 2544 26.2: per-datagram latency at the throughput rate (``stats`` None: none reported)."""

    rate_pps: float
    stats: LatencyStats | None = None


def latency(
    device: Device, frame: FrameSize, rate_pps: float, settings: Settings, on_trial: OnTrial | None = None
) -> LatencyResult:
    """Run ``settings.latency_trials`` trials at ``rate_pps`` with latencies on, and pool them."""
    trials = Trials(device, settings, on_trial)
    found = LatencyResult(rate_pps, steps=trials.steps)
    for _ in range(settings.latency_trials):
        step = trials.run(settings.paced("latency", frame, rate_pps, latency=True))
        if not step.passed:
            found.notes.append(f"a latency trial at {rate_pps:.6g} pps was not clean ({step.outcome.value})")
    results = [s.result for s in trials.steps]
    found.stats = pool(
        (r.latencies_ns for r in results if r.latencies_ns is not None), (r.latency_source for r in results)
    )
    if found.stats is None:
        found.notes.append("the device reported no latencies")
    elif found.stats.source is None:
        found.notes.append("the latency trials did not name one departure-time source")
    return found


def loss_trials(step: float) -> int:
    """The most trials one loss curve takes: every step from 100 % down to just above 0."""
    return math.ceil(round(1 / step, 9))


@dataclass
class LossCurveResult(Searched):
    """RFC 2544 26.3: [percent of the writer's unpaced maximum, loss fraction] from 100 % down."""

    max_pps: float
    points: list[list[float]] = field(default_factory=list)


def loss_curve(
    device: Device, frame: FrameSize, max_pps: float, settings: Settings, on_trial: OnTrial | None = None
) -> LossCurveResult:
    """Loss at 100 %, then one ``loss_step`` lower each trial, until two successive trials lose nothing."""
    trials = Trials(device, settings, on_trial)
    found = LossCurveResult(max_pps, steps=trials.steps)
    clean, index = 0, 0
    while clean < LOSS_FREE_STEPS:
        fraction = round(1.0 - index * settings.loss_step, 9)
        if fraction <= 0:
            break
        step = trials.run(settings.paced("loss", frame, max_pps * fraction))
        found.points.append([round(fraction * 100, 6), step.result.loss_fraction])
        clean = clean + 1 if step.result.loss_fraction == 0 else 0
        index += 1
    return found


@dataclass
class BackToBackResult(Searched):
    """RFC 2544 26.4: the longest burst at the writer's maximum rate that lost nothing, per repeat.

    ``capped`` is True when a repeat passed the longest burst tried (``longest``: one trial length at
    the writer's maximum), so the figure is a lower bound: the path kept up with the writer.
    """

    longest: int
    runs: list[int] = field(default_factory=list)
    capped: bool = False

    @property
    def frames(self) -> float | None:
        """The mean over the repeats, as the RFC reports it."""
        return statistics.fmean(self.runs) if self.runs else None

    @property
    def stdev(self) -> float | None:
        """The spread over the repeats (None for fewer than two)."""
        return statistics.stdev(self.runs) if len(self.runs) > 1 else None


def longest_burst(max_pps: float, trial_s: float) -> int:
    """The longest burst back-to-back tries: one trial length at the writer's maximum rate."""
    return max(1, math.ceil(max_pps * trial_s))


def burst_trials(longest: int, resolution: float) -> int:
    """The most trials one back-to-back repeat takes (1 at ``longest``, the gallop, the halvings)."""
    return 1 + (math.ceil(math.log2(longest)) + 1) + (bisection_steps(resolution) + 1)


def _longest_lossless(passes: Callable[[int], bool], longest: int, guess: int, resolution: float) -> int:
    """Longest n in [0, longest) with passes(n), knowing passes(longest) is False: gallop from ``guess``
    (doubling or halving) to bracket it, then halve the bracket to ``resolution`` of it (one frame at least)."""
    low, high = 0, longest
    size = min(max(1, guess), longest - 1)
    while low < size < high:
        if passes(size):
            low, size = size, size * 2
        else:
            high, size = size, size // 2
        if low and high < longest:
            break
    while high - low > max(1, math.floor(resolution * high)):
        middle = (low + high) // 2
        low, high = (middle, high) if passes(middle) else (low, middle)
    return low


def back_to_back(
    device: Device, frame: FrameSize, max_pps: float, settings: Settings, on_trial: OnTrial | None = None
) -> BackToBackResult:
    """Per repeat: a burst one trial long; if it loses, the longest lossless burst by galloping from the
    last repeat's figure (the first starts at the geometric middle) and halving. Tolerance is zero (26.4)."""
    trials = Trials(device, settings, on_trial)
    longest = longest_burst(max_pps, settings.trial_s)
    found = BackToBackResult(longest, steps=trials.steps)

    def passes(frames: int) -> bool:
        return trials.run(settings.burst(frame, frames), loss_tolerance=0.0).passed

    guess = math.isqrt(longest)
    for _ in range(settings.b2b_repeats):
        if passes(longest):
            found.runs.append(longest)
            found.capped = True
            continue
        found.runs.append(_longest_lossless(passes, longest, guess, settings.resolution))
        guess = found.runs[-1] or 1
    return found
