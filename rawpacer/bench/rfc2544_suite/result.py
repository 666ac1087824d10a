"""What an RFC 2544 run found, as the JSON file records it, written as the run goes.

One ``Entry`` per (writer, frame size) with every trial; ``Recorder`` appends each trial as it finishes
and rewrites the file atomically each time, so a run cut short (Ctrl-C) keeps what finished.
Mbit/s count the frame as RFC 2544 does (FCS included, preamble and inter-frame gap not).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rawpacer import outputs
from rawpacer.bench import histograms
from rawpacer.bench.record import RunRecord, derived
from rawpacer.bench.rfc2544_suite.sizes import FrameSize
from rawpacer.bench.rfc2544_suite.trial import Outcome, TrialResult

SCHEMA = "rawpacer-rfc2544/1"

READER_BOUND_FRACTION = 0.8
"""A figure at or above 80 % of the readers' measured capacity may be the readers' limit, not the kernel's."""


def mbit(pps: float | None, frame_size: float) -> float | None:
    """Megabits per second of ``pps`` frames of ``frame_size`` bytes as RFC 2544 counts them (FCS in)."""
    return None if pps is None else pps * frame_size * 8 / 1e6


FCS_BYTES = 4
"""The Ethernet frame check sequence: in RFC 2544's frame sizes, not in what a qdisc or the kernel sees."""


def l2_mbit(pps: float | None, frame_size: float) -> float | None:
    """Megabits per second of ``pps`` frames as Linux counts them at a qdisc (tbf, htb) or a link's
    byte counters: the frame without its FCS (``skb->len`` on transmit; see docs/dut.md)."""
    return None if pps is None else pps * (frame_size - FCS_BYTES) * 8 / 1e6


def size_heading(label: str) -> str:
    """A row's column heading: ``64 B`` for a frame size, the mix's label (``imix``) as it is."""
    return f"{label} B" if label.isdigit() else label


def finite(value: float | None) -> float | None:
    """``value``, or None when it is missing, infinite or NaN (JSON has neither)."""
    return value if value is not None and math.isfinite(value) else None


def spread(values: list[float | None]) -> float | None:
    """How far repeated searches agree: (max - min) / median of the figures they found, 0 to 1 and up;
    None with fewer than two figures (a repeat that found none is left out, and listed as null)."""
    found = [v for v in values if v is not None]
    if len(found) < 2 or statistics.median(found) <= 0:
        return None
    return (max(found) - min(found)) / statistics.median(found)


def reader_bound(pps: float | None, capacity_pps: float | None) -> bool:
    """True when ``pps`` reaches READER_BOUND_FRACTION of the readers' capacity (unknown capacity: False)."""
    return pps is not None and capacity_pps is not None and pps >= READER_BOUND_FRACTION * capacity_pps


@dataclass
class TrialRecord:
    """One trial as the JSON lists it: target ``rate`` (None for a burst) and what came of it."""

    test: str
    rate: float | None
    frames: int
    duration_s: float | None
    achieved_pps: float | None
    pause_ns: int
    sent: int
    delivered: int
    intact: int
    lost: int
    not_sent: int
    loss_fraction: float
    outcome: str
    reader_capacity_pps: float | None
    reader_bound: bool
    latency_source: str | None
    warmup_s: float
    drain_s: float
    notes: list[str] = field(default_factory=list)
    dut_drops: int = 0
    host: dict[str, Any] | None = None
    """What else the host did during the trial (rawpacer.host.HostActivity.to_dict)."""
    spoiled: bool = False
    """The host took enough CPU (steal, other processes, a stall) that the trial may show it, not the path."""
    duplicate: int = 0
    reordered: int = 0
    reordered_ratio: float | None = None
    reorder_extent: int | None = None
    """RFC 4737's counts (reordered, its ratio, the largest extent; None: no sequences) and duplicates."""
    latency_hdr: str | None = None
    """A latency trial's per-datagram latencies, ns, as a compressed HdrHistogram (``bench.histograms``)."""

    @classmethod
    def of(cls, result: TrialResult, outcome: Outcome) -> TrialRecord:
        """The record of a device's result and the search's verdict on it."""
        trial = result.trial
        return cls(
            test=trial.test,
            rate=trial.rate_pps,
            frames=trial.planned,
            duration_s=trial.duration_s,
            achieved_pps=finite(result.achieved_pps),
            pause_ns=result.pause_ns,
            sent=result.sent,
            delivered=result.delivered,
            intact=result.intact,
            lost=result.lost,
            not_sent=result.not_sent,
            loss_fraction=result.loss_fraction,
            outcome=outcome.value,
            reader_capacity_pps=finite(result.reader_capacity_pps),
            reader_bound=reader_bound(result.delivered_pps, result.reader_capacity_pps),
            latency_source=result.latency_source,
            warmup_s=result.warmup_s,
            drain_s=result.drain_s,
            notes=list(result.notes),
            dut_drops=result.dut_drops,
            host=None if result.host is None else result.host.to_dict(),
            spoiled=result.host is not None and result.host.spoiled,
            duplicate=result.duplicate,
            reordered=result.reordered,
            reordered_ratio=result.reordered_ratio,
            reorder_extent=result.reorder_extent,
            latency_hdr=None if result.latencies_ns is None else histograms.encode(result.latencies_ns),
        )


@dataclass
class Entry:
    """Every figure of one writer at one frame size (None: that test was not run or found nothing)."""

    writer: str
    frame_size: int
    """The frame size; for a size mix's row its largest frame (``mix`` then names the mix)."""
    payload_bytes: int
    ipv6: bool = False
    mix: str | None = None
    """A size mix's row: its label (``imix``, or ``64:7,594:4,1518:1`` as RFC 6985 writes a mix)."""
    mean_frame: float | None = None
    """A size mix's mean frame size (FCS in, weighted): what its Mbit/s count."""
    size_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """A size mix's frames per size over all its trials: sent, delivered, intact (keys: the sizes)."""
    writer_max_pps: float | None = None
    throughput_pps: float | None = None
    throughput_confirmed: bool = False
    throughput_candidate_pps: float | None = None
    limited_by: str | None = None
    throughput_runs: list[float | None] = field(default_factory=list)
    """Each repeated search's figure (``--repeat``; NDR with ``--search mlr``), null where none held."""
    throughput_spread: float | None = None
    """(max - min) / median of ``throughput_runs``: how far repeated searches agree."""
    ndr_pps: float | None = None
    """MLRsearch (``--search mlr``, RFC 9971): the Non-Drop Rate, loss ratio 0 (None: unreachable)."""
    ndr_conditional_pps: float | None = None
    ndr_upper_pps: float | None = None
    ndr_limited_by: str | None = None
    ndr_runs: list[float | None] = field(default_factory=list)
    ndr_spread: float | None = None
    pdr_pps: float | None = None
    """MLRsearch's Partial Drop Rate: loss ratio ``params.pdr`` (0.5 % by default)."""
    pdr_conditional_pps: float | None = None
    pdr_upper_pps: float | None = None
    pdr_limited_by: str | None = None
    pdr_runs: list[float | None] = field(default_factory=list)
    pdr_spread: float | None = None
    latency_at_pdr: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Latency at 10, 50 and 90 % of the PDR (keys "10", "50", "90"), as FD.io CSIT reports it: each with
    ``rate_pps``, ``latency_ns`` (p50, p99, p999, max), ``count``, ``source`` and ``hdr``."""
    trials: list[TrialRecord] = field(default_factory=list)
    latency_ns: dict[str, float] | None = None
    latency_source: str | None = None
    latency_rate_pps: float | None = None
    latency_cdf: list[float] = field(default_factory=list)
    latency_count: int | None = None
    latency_hdr: str | None = None
    """Every latency trial's datagrams pooled, as a compressed HdrHistogram (``bench.histograms``)."""
    loss_curve: list[list[float]] = field(default_factory=list)
    loss_reader_bound: list[float] = field(default_factory=list)
    back_to_back_frames: float | None = None
    back_to_back_runs: list[int] = field(default_factory=list)
    back_to_back_capped: bool = False
    finished: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The row's name: the frame size (``64``) or the mix (``imix``)."""
        return str(self.frame_size) if self.mix is None else self.mix

    @property
    def name(self) -> str:
        """The row as tables and reports name it: ``64 B``, or ``imix (mean 361.8 B)``."""
        return size_heading(self.label) if self.mix is None else f"{self.mix} (mean {self.mean_size:.1f} B)"

    @property
    def mean_size(self) -> float:
        """Bytes per frame its Mbit/s count: the frame size, or a mix's mean frame."""
        return float(self.frame_size) if self.mean_frame is None else self.mean_frame

    @property
    def throughput_mbit(self) -> float | None:
        """The throughput in Mbit/s (frame size with FCS, as RFC 2544 counts it; a mix's mean frame)."""
        return mbit(self.throughput_pps, self.mean_size)

    @property
    def ndr_mbit(self) -> float | None:
        """The NDR in Mbit/s (frame with FCS, as RFC 2544 counts it)."""
        return mbit(self.ndr_pps, self.mean_size)

    @property
    def pdr_mbit(self) -> float | None:
        """The PDR in Mbit/s (frame with FCS)."""
        return mbit(self.pdr_pps, self.mean_size)

    @property
    def reader_capacity_pps(self) -> float | None:
        """The readers' capacity: the median of what the trials measured (None: not measured)."""
        values = [t.reader_capacity_pps for t in self.trials if t.reader_capacity_pps is not None]
        return statistics.median(values) if values else None

    @property
    def spoiled(self) -> bool:
        """Any of the entry's trials ran while the host took the CPU (see TrialRecord.spoiled)."""
        return any(t.spoiled for t in self.trials)

    @property
    def reader_bound(self) -> bool:
        """The throughput reaches 80 % of the readers' capacity (no throughput: a lossy loss point did)."""
        if self.throughput_pps is not None:
            return reader_bound(self.throughput_pps, self.reader_capacity_pps)
        return bool(self.loss_reader_bound)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the issue's keys (``throughput_mbit``, ``reader_bound``...) and the rest."""
        out = asdict(self)
        out.update(
            derived(self, ("throughput_mbit", "ndr_mbit", "pdr_mbit", "reader_capacity_pps", "reader_bound", "spoiled"))
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        """An Entry from its JSON object (derived keys are recomputed, not read)."""
        names = {f.name for f in fields(cls)}
        entry = cls(**{k: v for k, v in data.items() if k in names and k != "trials"})
        entry.trials = [TrialRecord(**t) for t in data.get("trials", [])]
        return entry


@dataclass
class Run(RunRecord[Entry]):
    """A whole RFC 2544 run: where, with what parameters, every entry so far, and whether it was cut short."""

    @property
    def writers(self) -> list[str]:
        """The writers in the order they ran."""
        return list(dict.fromkeys(e.writer for e in self.results))

    @property
    def sizes(self) -> list[str]:
        """The rows measured, by label: frame sizes smallest first, then size mixes by mean frame."""
        rows = {e.label: (e.mix is not None, e.mean_size) for e in self.results}
        return sorted(rows, key=lambda label: rows[label])

    def find(self, writer: str, size: int | str) -> Entry | None:
        """The entry of ``writer`` at frame size (or mix label) ``size``, if any."""
        return next((e for e in self.results if e.writer == writer and e.label == str(size)), None)

    def header(self) -> dict[str, Any]:
        """The JSON document without its results: schema, machine, environment, params, interrupted, notes."""
        return {"schema": SCHEMA, **super().header()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: the header and every entry under ``results``."""
        return dict(self.header(), results=[e.to_dict() for e in self.results])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        """A Run from its JSON document (as ``load_run`` reads it)."""
        return cls(
            data["machine"],
            data["params"],
            [Entry.from_dict(e) for e in data.get("results", [])],
            list(data.get("notes", [])),
            bool(data.get("interrupted", False)),
            dict(data.get("environment") or {}),
        )


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read a run's JSON file back (to redraw its tables, plot or report)."""
    return Run.from_dict(json.loads(Path(path).read_text()))


class Recorder:
    """Keeps a Run and, with a path, its JSON file up to date after every trial (atomic rewrite)."""

    def __init__(
        self,
        run: Run,
        path: str | os.PathLike[str] | None = None,
        on_trial: Callable[[Entry, TrialRecord], None] | None = None,
    ) -> None:
        self.run = run
        self.path = None if path is None else Path(path)
        self.on_trial = on_trial
        self.moved: str | None = None
        """Why the file had to move to a fallback place (``path`` then names it), if it did."""
        self._finished: dict[int, str] = {}
        self.save()

    def _entry_json(self, index: int, entry: Entry) -> str:
        """An entry's JSON text; a finished entry's is made once (it no longer changes)."""
        if index in self._finished:
            return self._finished[index]
        text = json.dumps(entry.to_dict(), allow_nan=False)
        if entry.finished:
            self._finished[index] = text
        return text

    def save(self) -> None:
        """Rewrite the file from the Run, via a temporary file and a rename: never half written."""
        if self.path is None:
            return
        entries = ", ".join(self._entry_json(i, e) for i, e in enumerate(self.run.results))
        head = json.dumps(self.run.header(), allow_nan=False)
        text = f'{head[:-1]}, "results": [{entries}]}}\n'
        if self.moved is not None:
            outputs.replace(self.path, lambda tmp: tmp.write_text(text))
            return
        written = outputs.write(self.path, lambda tmp: tmp.write_text(text), suffix=".json")
        if not written.ok:
            self.moved, self.path = written.failed, written.path

    def start(self, writer: str, frame: FrameSize) -> Entry:
        """A new, unfinished entry for ``writer`` at ``frame``."""
        mixed = frame.mix is not None
        entry = Entry(
            writer,
            frame.size,
            frame.payload_bytes,
            frame.ipv6,
            mix=frame.label if mixed else None,
            mean_frame=float(frame.mean_frame) if mixed else None,
        )
        self.run.results.append(entry)
        self.save()
        return entry

    def add_trial(self, entry: Entry, result: TrialResult, outcome: Outcome) -> TrialRecord:
        """Append one finished trial to ``entry`` and write the file."""
        record = TrialRecord.of(result, outcome)
        entry.trials.append(record)
        for size, counts in (result.sizes or {}).items():
            row = entry.size_counts.setdefault(str(size), dict.fromkeys(counts, 0))
            for name, value in counts.items():
                row[name] = row.get(name, 0) + value
        self.save()
        if self.on_trial is not None:
            self.on_trial(entry, record)
        return record

    def finish(self, entry: Entry) -> None:
        """Mark ``entry`` complete and write the file."""
        entry.finished = True
        self.save()

    def interrupt(self) -> None:
        """Mark the run as cut short and write the file: what finished stays."""
        self.run.interrupted = True
        self.save()
