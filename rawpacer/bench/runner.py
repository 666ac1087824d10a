"""One writer's calibrated pass against a live reader set: the timed op loop, then the allocation pass.

The ops themselves are ``oploop.OpLoop``'s; this module times runs of them like Go's ``b.N``,
folds what the readers saw into a ``Sample``, and counts allocations in a separate short pass so
timing is unaffected. A fan-out op that gave up waiting for a missing datagram is counted
(``ops_incomplete``) and kept out of the timing figures: the wait for what never came measures the
time-out, not the writer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeVar

import numpy as np

from rawpacer.bench import allocs, histograms
from rawpacer.bench.calibrate import Benchtime, Timed, calibrate
from rawpacer.bench.oploop import STREAM_SETTLE_S, OpLoop, Outcome
from rawpacer.bench.result import Sample
from rawpacer.bench.shaping import mean_link_bytes
from rawpacer.bench.stats import cdf, percentiles
from rawpacer.diagnose import Counters
from rawpacer.pacing import Pacer, PaceSpec, link_bytes, make_schedule, stream_stats
from rawpacer.readers import Counts
from rawpacer.traffic import SizeMix
from rawpacer.writers.base import Writer

SHORTFALL = 0.01
"""A paced stream that achieved more than 1 % less than its rate fell short: the writer's limit."""
ALLOC_PASS_S = 0.1
ALLOC_OPS = (1, 50)


T = TypeVar("T")


@dataclass
class Tally:
    """What one timed run of ops (or one stream) added up to."""

    ops: int = 0
    sent: int = 0
    counts: Counts = field(default_factory=Counts)
    sequenced: bool = False
    """A sequenced stream was counted: reordering was measured."""
    reader_cpu_ns: float = 0.0
    reader_busy_s: float = 0.0
    reader_checked: int = 0
    incomplete: int = 0
    incomplete_ns: int = 0
    op_ns: list[int] = field(default_factory=list)
    sizes: dict[int, dict[str, int]] | None = None
    """A shaped stream's frames per size: sent, delivered, intact."""
    payload_bytes: int | None = None
    """A shaped stream's payload bytes delivered (its datagrams' lengths differ)."""

    def add(self, outcome: Outcome) -> None:
        """Fold in one op's (or one stream's) outcome."""
        result = outcome.result
        self.ops += outcome.fanouts
        self.sent += outcome.sent
        self.counts += result.counts
        self.sequenced |= result.sequenced
        self.reader_cpu_ns += result.reader_cpu_s * 1e9
        self.reader_busy_s += result.reader_busy_s
        self.reader_checked += result.reader_checked
        if outcome.sizes is not None:
            self.sizes = self.sizes or {}
            for size, counts in outcome.sizes.items():
                row = self.sizes.setdefault(size, {"sent": 0, "delivered": 0, "intact": 0})
                for name, value in counts.items():
                    row[name] += value
            self.payload_bytes = (self.payload_bytes or 0) + sum(n * got for n, (got, _) in result.lengths.items())
        if result.timed_out:
            self.incomplete += 1
            self.incomplete_ns += outcome.elapsed_ns
        else:
            self.op_ns.append(outcome.elapsed_ns)


@dataclass(frozen=True)
class Paced:
    """A paced stream's settings: what was asked, the rate in datagrams/s it came to for this writer's
    frames, and the pacer (the op loop's departures) whose own record goes into the results."""

    spec: PaceSpec
    rate_pps: float
    pacer: Pacer


def paced(spec: PaceSpec, writer: Writer, mix: SizeMix | None = None) -> Paced:
    """The pacing of one writer's stream: a bit rate is counted on the bytes its datagrams occupy on
    the link (``rawpacer.pacing.link_bytes``: Ethernet, VLAN tag, IP, UDP, payload, per fragment),
    or with a size ``mix`` (``--sizes``) on the mix's mean of those bytes."""
    target = writer.target
    vlan = target.vlan is not None
    mtu, version = writer.planned_mtu, target.ip_version
    frame: int | Fraction = (
        link_bytes(writer.delivered_size, mtu=mtu, ip_version=version, vlan=vlan)
        if mix is None
        else mean_link_bytes(mix, mtu=mtu, ip_version=version, vlan=vlan)
    )
    return Paced(spec, spec.pps(frame), Pacer(make_schedule(spec, frame), **spec.pacer_args()))


@dataclass
class Pass:
    """One writer's pass: its op loop, the mode it runs in (``fanout`` or ``stream``) and, for a
    paced stream, its pacing (the loop's departures must then be ``paced.pacer``)."""

    loop: OpLoop
    mode: str = "fanout"
    paced: Paced | None = None
    observe: Callable[[], Counters] | None = None
    """Reads the kernel's counters (the readers' namespace's, and a DUT's); given, they are read just
    before and after each measured run, so ``window`` holds what moved during the sample's run alone."""
    window: tuple[Counters, Counters] | None = field(default=None, init=False)

    def _observed(self, run: Callable[[], T]) -> T:
        """``run()``, with the counters read around it into ``window`` (when there is an observer)."""
        if self.observe is None:
            return run()
        before = self.observe()
        value = run()
        self.window = (before, self.observe())
        return value

    def run_fanout(self, n: int) -> Timed[Tally]:
        """``n`` fan-out ops back to back, timed as one run."""
        outcomes = self.loop.fanouts(n)
        tally = Tally()
        for outcome in outcomes:
            tally.add(outcome)
        return Timed(n, sum(o.elapsed_ns for o in outcomes), tally)

    def run_stream(self, n: int) -> Timed[Tally]:
        """One stream of ``n`` fan-outs, timed; delivery counted at its end."""
        outcome = self.loop.stream(n)
        tally = Tally()
        tally.add(outcome)
        return Timed(n, outcome.elapsed_ns, tally)

    def timed(self, n: int) -> Timed[Tally]:
        """The calibration step: ``n`` ops in this pass's mode (the last one is the sample)."""
        return self._observed(lambda: self.run_stream(n) if self.mode == "stream" else self.run_fanout(n))

    def measure_paced(self, benchtime: Benchtime, pace: Paced) -> tuple[Sample, list[str]]:
        """A paced stream of known length (``benchtime``: a duration at the rate, or ``Nx`` fan-outs),
        no calibration; after one unmeasured fan-out leaves the same way (cold caches make the
        first datagram late), every datagram's kernel receive time gives the pacing figures."""
        ports = len(self.loop.readers.ports)
        fanouts = benchtime.ops or max(1, math.ceil(pace.rate_pps * benchtime.seconds / ports))
        self.loop.stream(1)
        outcome = self._observed(lambda: self.loop.stream(fanouts, timestamps=True))
        tally = Tally()
        tally.add(outcome)
        arrivals = outcome.result.arrivals
        rx = arrivals.in_arrival_order().rx_ns if arrivals is not None else np.zeros(0, np.int64)
        spec = pace.spec
        figures = stream_stats(
            rx,
            rate_pps=pace.rate_pps,
            burst=spec.burst,
            pattern=spec.pattern,
            seed=spec.seed,
            pacer=pace.pacer.report(),
        )
        sample = self.sample(fanouts, outcome.elapsed_ns, tally)
        sample.pacing = figures
        deviations = np.abs(np.diff(rx[:: spec.burst]) - figures["gap_ideal_ns"])
        sample.gap_dev_cdf = cdf(deviations)
        sample.gap_dev_hdr = histograms.encode(deviations)
        notes = []
        achieved = figures["rate_achieved_pps"]
        if achieved is not None and achieved < pace.rate_pps * (1 - SHORTFALL):
            notes.append(f"fell short: {achieved:,.0f} of the {pace.rate_pps:,.0f} datagrams/s asked for")
        return sample, notes

    def sample(self, ops: int, elapsed_ns: int, tally: Tally) -> Sample:
        """A Sample of ``ops`` ops in ``elapsed_ns`` (incomplete ops taken out of both) from ``tally``."""
        return Sample(
            ops=ops - tally.incomplete,
            elapsed_ns=elapsed_ns - tally.incomplete_ns,
            sent=tally.sent,
            counts=tally.counts,
            payload_bytes=tally.counts.delivered * self.loop.expected_size
            if tally.payload_bytes is None
            else tally.payload_bytes,
            sequenced=tally.sequenced,
            sizes=tally.sizes,
            reader_cpu_ns_per_op=tally.reader_cpu_ns / ops,
            reader_capacity_pps=tally.reader_checked / tally.reader_busy_s if tally.reader_busy_s else None,
            ops_incomplete=tally.incomplete,
            op_ns_percentiles=percentiles(tally.op_ns) if self.mode == "fanout" else None,
            op_ns_cdf=cdf(tally.op_ns) if self.mode == "fanout" else [],
            op_ns_hdr=histograms.encode(tally.op_ns) if self.mode == "fanout" else None,
        )

    def measure(self, benchtime: Benchtime) -> tuple[Sample, list[str]]:
        """Calibrate like Go, keep the last run as the sample, then count its allocations per op
        (a paced stream has a known length instead: ``measure_paced``)."""
        if self.paced is not None:
            return self.measure_paced(benchtime, self.paced)
        runs = calibrate(self.timed, benchtime)
        final = runs[-1]
        notes = []
        earlier_lost = sum(r.value.sent - r.value.counts.delivered for r in runs[:-1])
        if earlier_lost > 0:
            notes.append(f"{earlier_lost} datagram(s) also lost during calibration runs")
        tally = final.value
        sample = self.sample(final.n, final.elapsed_ns, tally)
        if tally.incomplete:
            notes.append(
                f"{tally.incomplete} op(s) gave up waiting for a missing datagram; "
                "their time is not in ns/op (ops_incomplete)"
            )
        figures = self.count_allocations(sample.ns_per_op or float(tally.incomplete_ns) / final.n)
        sample.bytes_per_op, sample.allocs_per_op = figures.bytes_per_op, figures.allocs_per_op
        sample.alloc_method = figures.method
        return sample, notes

    def count_allocations(self, ns_per_op: float) -> allocs.AllocFigures:
        """A short untimed pass of whole ops with allocation counting on (see allocs.py)."""
        low, high = ALLOC_OPS
        ops = max(low, min(high, round(ALLOC_PASS_S * 1e9 / max(ns_per_op, 1))))
        if self.mode == "stream":
            self.loop.begin_stream()
            try:
                return allocs.measure(self.loop.replay, ops)
            finally:
                self.loop.readers.end_stream(ops, settle=STREAM_SETTLE_S)
        op: Callable[[], object] = self.loop.fanout
        return allocs.measure(op, ops)
