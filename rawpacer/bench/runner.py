"""One writer's calibrated pass against a live reader set: the timed op loop, then the allocation pass.

One fan-out op is the seed's job: fresh messages into the readers' shared buffer, arm the
readers, ``send`` one message to every reader, wait until each has its datagram (or the time-out).
In stream mode an op is one send to every reader, nothing awaited: the messages are filled once
before the stream (the readers check every datagram against them, so they cannot change mid-stream),
sent once and then replayed with ``Writer.resend`` (like trafgen's prebuilt frames), and the readers
are checked once at the end of the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rawpacer.bench import allocs
from rawpacer.bench.calibrate import Benchtime, Timed, calibrate
from rawpacer.bench.result import Sample
from rawpacer.messages import MessageSource
from rawpacer.readers import OpResult, ReaderSet
from rawpacer.writers.base import Writer

ALLOC_PASS_S = 0.1
ALLOC_OPS = (1, 50)
STREAM_SETTLE_S = 0.2
COUNTS = ("delivered", "intact", "corrupt", "duplicate", "lost")


@dataclass
class Tally:
    """Summed reader counts over the ops of one run."""

    sent: int = 0
    delivered: int = 0
    intact: int = 0
    corrupt: int = 0
    duplicate: int = 0
    lost: int = 0
    reader_cpu_ns: float | None = None

    def add(self, sent: int, result: OpResult) -> None:
        """Add one op's (or one stream's) sent count and the readers' OpResult."""
        self.sent += sent
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(result, name))
        self.reader_cpu_ns = (self.reader_cpu_ns or 0.0) + result.reader_cpu_s * 1e9


@dataclass
class Pass:
    """Everything one writer pass needs: the writer, readers, message source and op shape."""

    writer: Writer
    readers: ReaderSet
    source: MessageSource
    mode: str = "fanout"

    @property
    def expected_size(self) -> int:
        """Bytes each reader should receive (the writer may trim)."""
        return self.writer.delivered_size

    def fanout_op(self) -> tuple[int, OpResult]:
        """The seed's op: fresh messages, arm the readers, send to all, wait for all."""
        readers = self.readers
        self.source.fill(readers.buffer)
        readers.begin(self.expected_size)
        sent = self.writer.send(readers.messages)
        return sent, readers.wait(sent)

    def stream_op(self) -> int:
        """A stream op: the stream's fan-out to every reader again, nothing awaited."""
        return self.writer.resend(self.readers.messages)

    def begin_stream(self) -> None:
        """Fresh messages for the whole stream (untimed), then arm the readers."""
        self.source.fill(self.readers.buffer)
        self.readers.begin_stream(self.expected_size)

    def run_fanout(self, n: int) -> Timed[Tally]:
        """``n`` fan-out ops back to back, timed as one run."""
        op, outcomes = self.fanout_op, []
        start = time.perf_counter_ns()
        for _ in range(n):
            outcomes.append(op())
        elapsed = time.perf_counter_ns() - start
        tally = Tally()
        for sent, result in outcomes:
            tally.add(sent, result)
        return Timed(n, elapsed, tally)

    def run_stream(self, n: int) -> Timed[Tally]:
        """One stream of ``n`` fan-outs, timed; delivery counted at its end."""
        op = self.stream_op
        self.begin_stream()
        start = time.perf_counter_ns()
        sent = self.writer.send(self.readers.messages)
        for _ in range(n - 1):
            sent += op()
        elapsed = time.perf_counter_ns() - start
        tally = Tally()
        tally.add(sent, self.readers.end_stream(n, settle=STREAM_SETTLE_S))
        return Timed(n, elapsed, tally)

    def timed(self, n: int) -> Timed[Tally]:
        """The calibration step: ``n`` ops in this pass's mode."""
        return self.run_stream(n) if self.mode == "stream" else self.run_fanout(n)

    def measure(self, benchtime: Benchtime) -> tuple[Sample, list[str]]:
        """Calibrate like Go, keep the last run as the sample, then count its allocations per op."""
        runs = calibrate(self.timed, benchtime)
        final = runs[-1]
        notes = []
        earlier_lost = sum(r.value.sent - r.value.delivered for r in runs[:-1])
        if earlier_lost > 0:
            notes.append(f"{earlier_lost} datagram(s) also lost during calibration runs")
        tally = final.value
        sample = Sample(
            ops=final.n,
            elapsed_ns=final.elapsed_ns,
            sent=tally.sent,
            delivered=tally.delivered,
            intact=tally.intact,
            payload_bytes=tally.delivered * self.expected_size,
            corrupt=tally.corrupt,
            duplicate=tally.duplicate,
            lost=tally.lost,
            reader_cpu_ns_per_op=None if tally.reader_cpu_ns is None else tally.reader_cpu_ns / final.n,
        )
        figures = self.count_allocations(sample.ns_per_op)
        sample.bytes_per_op, sample.allocs_per_op = figures.bytes_per_op, figures.allocs_per_op
        sample.alloc_method = figures.method
        return sample, notes

    def count_allocations(self, ns_per_op: float) -> allocs.AllocFigures:
        """A short untimed pass of whole ops with allocation counting on (see allocs.py)."""
        low, high = ALLOC_OPS
        ops = max(low, min(high, round(ALLOC_PASS_S * 1e9 / max(ns_per_op, 1))))
        if self.mode == "stream":
            self.begin_stream()
            try:
                return allocs.measure(self.stream_op, ops)
            finally:
                self.readers.end_stream(ops, settle=STREAM_SETTLE_S)
        op: Callable[[], object] = self.fanout_op
        return allocs.measure(op, ops)
