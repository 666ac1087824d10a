"""A whole RFC 2544 run through the Device seam: every test the settings name, per writer and frame size.

Pure like the searches: the live runner supplies one ``Device`` per writer and a ``Recorder``; this
module decides what to run, in the RFC's order, and fills each ``Entry`` as the results come in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rawpacer.bench.methodology.options import Settings
from rawpacer.bench.methodology.result import Entry, Recorder, Run, reader_bound
from rawpacer.bench.methodology.search import (
    BackToBackResult,
    LatencyResult,
    LossCurveResult,
    ThroughputResult,
    back_to_back,
    latency,
    loss_curve,
    throughput,
)
from rawpacer.bench.methodology.sizes import FrameSize
from rawpacer.bench.methodology.trial import Device, Outcome, TrialResult
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


def _apply_latency(entry: Entry, found: LatencyResult) -> None:
    entry.latency_rate_pps = found.rate_pps
    if found.stats is not None:
        entry.latency_ns = found.stats.to_dict()
        entry.latency_source = found.stats.source
        entry.latency_cdf = found.stats.cdf
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
    if "throughput" in tests or "latency" in tests:
        _apply_throughput(entry, throughput(device, frame, top, settings, record))
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
                    entry = recorder.run.find(device.writer, frame.size)
                    if entry is not None:
                        entry.error = str(exc)
                        recorder.save()
    except KeyboardInterrupt:
        recorder.interrupt()
        raise
    return recorder.run
