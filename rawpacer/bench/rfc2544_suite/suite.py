"""A whole RFC 2544 run through the Device seam: every test the settings name, per writer and frame size.

Pure like the searches: the live runner supplies one ``Device`` per writer and a ``Recorder``; this
module decides what to run, in the RFC's order, and fills each ``Entry`` as the results come in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rawpacer.bench.rfc2544_suite.latency import LatencyStats
from rawpacer.bench.rfc2544_suite.mlr import Goal, MlrResult, mlr_search, mlr_trials
from rawpacer.bench.rfc2544_suite.options import Settings
from rawpacer.bench.rfc2544_suite.result import Entry, Recorder, Run, reader_bound, spread
from rawpacer.bench.rfc2544_suite.search import (
    BackToBackResult,
    LatencyResult,
    LossCurveResult,
    ThroughputResult,
    back_to_back,
    burst_trials,
    latency,
    longest_burst,
    loss_curve,
    loss_trials,
    throughput,
    throughput_trials,
)
from rawpacer.bench.rfc2544_suite.sizes import FrameSize
from rawpacer.bench.rfc2544_suite.trial import Device, Outcome, TrialResult
from rawpacer.errors import RawpacerError


def new_run(settings: Settings, machine: dict[str, Any], **params: Any) -> Run:
    """An empty Run: the machine, the settings' parameters and any the caller adds (writers, readers...)."""
    return Run(machine, dict(settings.params(), **params))


def _apply_throughput(entry: Entry, found: ThroughputResult) -> None:
    entry.throughput_pps = found.rate_pps
    entry.throughput_confirmed = found.confirmed
    entry.throughput_candidate_pps = found.candidate_pps
    entry.limited_by = found.limited_by
    entry.notes.extend(found.notes)


def _median_run(runs: list[Any], rate: Callable[[Any], float | None]) -> Any:
    """The repeat whose figure is the (lower) median of the repeats' figures; one that found none ranks lowest."""
    ranked = sorted(runs, key=lambda r: -1.0 if (found := rate(r)) is None else found)
    return ranked[(len(ranked) - 1) // 2]


def _rates(runs: list[Any], rate: Callable[[Any], float | None]) -> list[float | None]:
    return [rate(r) for r in runs]


def _goal_rate(goal: Goal | None) -> float | None:
    return None if goal is None else goal.rate_pps


def _apply_goal(entry: Entry, prefix: str, goal: Goal | None) -> None:
    if goal is None:
        return
    setattr(entry, f"{prefix}_pps", goal.rate_pps)
    setattr(entry, f"{prefix}_conditional_pps", goal.conditional_pps)
    setattr(entry, f"{prefix}_upper_pps", goal.upper_pps)
    setattr(entry, f"{prefix}_limited_by", goal.limited_by)


def _latency_dict(stats: LatencyStats, rate: float) -> dict[str, Any]:
    return {
        "rate_pps": rate,
        "latency_ns": stats.to_dict(),
        "count": stats.count,
        "source": stats.source,
        "hdr": stats.hdr,
    }


def _apply_mlr(entry: Entry, runs: list[MlrResult]) -> None:
    """NDR and PDR (the median repeat's), every repeat's figures and their spread; the NDR is also the
    entry's throughput (RFC 2544's zero-loss rate), so the other tests and tables go on from it."""
    chosen = _median_run(runs, lambda r: _goal_rate(r.ndr))
    _apply_goal(entry, "ndr", chosen.ndr)
    _apply_goal(entry, "pdr", chosen.pdr)
    entry.ndr_runs = _rates(runs, lambda r: _goal_rate(r.ndr))
    entry.pdr_runs = _rates(runs, lambda r: _goal_rate(r.pdr))
    entry.ndr_spread, entry.pdr_spread = spread(entry.ndr_runs), spread(entry.pdr_runs)
    entry.throughput_pps = entry.ndr_pps
    entry.throughput_confirmed = entry.ndr_pps is not None
    entry.limited_by = entry.ndr_limited_by
    entry.throughput_runs, entry.throughput_spread = entry.ndr_runs, entry.ndr_spread
    entry.latency_at_pdr = {k: _latency_dict(s, chosen.latency_rates[k]) for k, s in chosen.latency.items()}
    entry.notes.extend(dict.fromkeys(n for r in runs for n in r.notes))


def _apply_throughputs(entry: Entry, runs: list[ThroughputResult]) -> None:
    """The median repeat's figures, and every repeat's rate and their spread."""
    _apply_throughput(entry, _median_run(runs, lambda r: r.rate_pps))
    entry.throughput_runs = _rates(runs, lambda r: r.rate_pps)
    entry.throughput_spread = spread(entry.throughput_runs)


def _apply_latency(entry: Entry, found: LatencyResult) -> None:
    entry.latency_rate_pps = found.rate_pps
    if found.stats is not None:
        entry.latency_ns = found.stats.to_dict()
        entry.latency_source = found.stats.source
        entry.latency_cdf = found.stats.cdf
        entry.latency_count = found.stats.count
        entry.latency_hdr = found.stats.hdr
    entry.notes.extend(found.notes)


def _apply_loss(entry: Entry, found: LossCurveResult) -> None:
    entry.loss_curve = found.points
    entry.loss_reader_bound = [
        percent
        for (percent, loss), step in zip(found.points, found.steps)
        if loss > 0 and reader_bound(step.result.delivered_pps, step.result.reader_capacity_pps)
    ]


def _apply_back_to_back(entry: Entry, found: BackToBackResult) -> None:
    entry.back_to_back_frames = found.frames
    entry.back_to_back_runs = found.runs
    entry.back_to_back_capped = found.capped
    if found.capped:
        entry.notes.append(f"a burst of {found.longest} frames (one trial at the writer's maximum) lost nothing")


def run_entry(device: Device, frame: FrameSize, settings: Settings, recorder: Recorder) -> Entry:
    """Every selected test for one writer at one frame size; each trial reaches the recorder as it ends.

    Latency is measured at the throughput rate (RFC 2544 26.2), so selecting it runs the throughput
    search too. The throughput figure is what the loss and burst tests are not: they use the writer's
    unpaced maximum, measured once per frame size.
    """
    entry = recorder.start(device.writer, frame)

    def record(result: TrialResult, outcome: Outcome) -> None:
        recorder.add_trial(entry, result, outcome)

    tests = settings.tests
    top = device.max_rate(frame)
    entry.writer_max_pps = top
    recorder.save()
    if ("throughput" in tests or "latency" in tests) and settings.search == "mlr":
        _apply_mlr(entry, [mlr_search(device, frame, top, settings, record) for _ in range(settings.repeat)])
        recorder.save()
    elif "throughput" in tests or "latency" in tests:
        _apply_throughputs(entry, [throughput(device, frame, top, settings, record) for _ in range(settings.repeat)])
        recorder.save()
    if "latency" in tests:
        if entry.throughput_pps is None:
            entry.notes.append("latency not measured: no throughput rate held")
        else:
            _apply_latency(entry, latency(device, frame, entry.throughput_pps, settings, record))
        recorder.save()
    if "loss" in tests:
        _apply_loss(entry, loss_curve(device, frame, top, settings, record))
        recorder.save()
    if "back-to-back" in tests:
        _apply_back_to_back(entry, back_to_back(device, frame, top, settings, record))
    recorder.finish(entry)
    return entry


def run_suite(devices: Iterable[Device], settings: Settings, recorder: Recorder) -> Run:
    """Each device (one per writer, opened lazily by the iterable) at every frame size, in order.

    A device that fails with a RawpacerError leaves its error in the entry and the run goes on; Ctrl-C
    marks the run interrupted, writes what finished, and propagates.
    """
    try:
        for device in devices:
            for frame in settings.sizes:
                try:
                    run_entry(device, frame, settings, recorder)
                except RawpacerError as exc:
                    entry = recorder.run.find(device.writer, frame.label)
                    if entry is not None:
                        entry.error = str(exc)
                        recorder.save()
    except KeyboardInterrupt:
        recorder.interrupt()
        raise
    return recorder.run


def trial_budget(settings: Settings, max_pps: float) -> int:
    """The most trials one (writer, frame size) entry takes with these settings, for a writer whose
    unpaced maximum is ``max_pps``: a progress bar's total."""
    tests = settings.tests
    per_search = mlr_trials(settings) if settings.search == "mlr" else throughput_trials(settings.resolution)
    budget = per_search * settings.repeat if "throughput" in tests or "latency" in tests else 0
    budget += settings.latency_trials if "latency" in tests else 0
    budget += loss_trials(settings.loss_step) if "loss" in tests else 0
    if "back-to-back" in tests:
        budget += settings.b2b_repeats * burst_trials(longest_burst(max_pps, settings.trial_s), settings.resolution)
    return budget
