"""What a benchmark run measured: samples per writer, their medians, and the whole report."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from rawpacer.bench import confidence
from rawpacer.bench.record import RunRecord, derived
from rawpacer.bench.stats import PERCENTILES
from rawpacer.host import HostActivity
from rawpacer.readers import counts
from rawpacer.readers.counts import Counts, total

BASELINE = "udp-sendto"
GO_BASELINE = "go-net-baseline"
OP_PERCENTILE = "ns_per_op_"
"""Prefix of the op-time percentiles' JSON names: ns_per_op_p50, _p99, _p999, _max."""


@dataclass
class Sample:
    """One timed pass of one writer: ``ops`` ops in ``elapsed_ns``, and what the readers got."""

    ops: int
    elapsed_ns: int
    sent: int
    counts: Counts
    payload_bytes: int
    checked: bool = True
    """The readers compared every datagram's bytes (False for the Go seed's, which only count:
    ``intact`` is then None in the JSON)."""
    sequenced: bool = False
    """The datagrams carried sequences, so reordering was measured (else ``reorder_extent`` is None
    in the JSON: fan-out ops, messages shorter than the sequence field, the Go peers)."""
    bytes_per_op: float | None = None
    allocs_per_op: float | None = None
    reader_cpu_ns_per_op: float | None = None
    alloc_method: str | None = None
    reader_capacity_pps: float | None = None
    """Datagrams the reader process can receive and check per second of its busy time."""
    ops_incomplete: int = 0
    """Fan-out ops that gave up waiting for a missing datagram: counted here, kept out of the timing."""
    op_ns_percentiles: dict[str, float] | None = None
    """Fan-out op times' p50/p99/p999/max (complete ops only)."""
    op_ns_cdf: list[float] = field(default_factory=list)
    """Quantiles of the complete ops' times, for the CDF in ``--plot``."""
    op_ns_hdr: str | None = None
    """The complete ops' times, ns, as a compressed HdrHistogram (``rawpacer.bench.histograms``)."""
    pacing: dict[str, Any] | None = None
    """A paced stream's figures from kernel receive timestamps (``rawpacer.pacing.stream_stats``)."""
    gap_dev_cdf: list[float] = field(default_factory=list)
    """Quantiles of a paced stream's |gap - ideal gap|, ns, for the gap distribution in ``--plot``."""
    gap_dev_hdr: str | None = None
    """A paced stream's |gap - ideal gap|, ns, as a compressed HdrHistogram."""
    dut: dict[str, int] | None = None
    """The device under test's counters that moved during the sample's run (router topology): its
    links, qdiscs (``dut.qdisc.rpd1.tbf.drops``), nftables rules and forwarding MIB."""
    dut_dropped: int | None = None
    """Datagrams the DUT's own counters say it dropped during the sample's run (its diagnosis rules)."""
    sizes: dict[int, dict[str, int]] | None = None
    """A shaped stream's frames per size (``--sizes``, RFC 2544's count): sent, delivered, intact."""

    def count(self, name: str) -> int | None:
        """One of ``counts`` by name, None where it was not measured (``checked``, ``sequenced``)."""
        if (name == "intact" and not self.checked) or (name == "reorder_extent" and not self.sequenced):
            return None
        value: int = getattr(self.counts, name)
        return value

    @property
    def reordered_ratio(self) -> float | None:
        """RFC 4737 4.1's reordered ratio: reordered over intact datagrams (None: not measured)."""
        if not self.sequenced:
            return None
        return self.counts.reordered / self.counts.intact if self.counts.intact else 0.0

    @property
    def dut_forwarded_pps(self) -> float | None:
        """Datagrams the DUT forwarded (Ip ForwDatagrams, Ip6 OutForwDatagrams) per second of the run."""
        if self.dut is None or not self.elapsed_ns:
            return None
        forwarded = self.dut.get("dut.Ip.ForwDatagrams", 0) + self.dut.get("dut.Ip6.OutForwDatagrams", 0)
        return forwarded * 1e9 / self.elapsed_ns

    host: HostActivity | None = None
    """What else the host did during the pass (rawpacer.host.activity): steal, other processes, stalls."""

    @property
    def ns_per_op(self) -> float | None:
        """Wall time per (complete) op of this sample; None when no op completed."""
        return self.elapsed_ns / self.ops if self.ops else None

    @property
    def packets_per_s(self) -> float | None:
        """Datagrams delivered per second of this sample."""
        return self.counts.delivered * 1e9 / self.elapsed_ns if self.elapsed_ns else None

    @property
    def mb_per_s(self) -> float | None:
        """Payload megabytes (10^6, as Go's MB/s) delivered per second."""
        return self.payload_bytes * 1e3 / self.elapsed_ns if self.elapsed_ns else None

    @property
    def ns_per_packet(self) -> float | None:
        """Wall time per delivered datagram: the figure a readers sweep compares."""
        return self.elapsed_ns / self.counts.delivered if self.counts.delivered else None

    @property
    def longest_stall_ns(self) -> int | None:
        """The longest the loop was held up: a paced stream's latest departure (the pacer's record), or
        the slowest fan-out op's time over the median op's (None: a stream with neither)."""
        lateness = ((self.pacing or {}).get("pacer") or {}).get("lateness_ns", {}).get("max")
        if lateness is not None:
            return int(lateness)
        ops = self.op_ns_percentiles or {}
        return None if ops.get("max") is None or ops.get("p50") is None else int(ops["max"] - ops["p50"])

    @property
    def all_intact(self) -> bool:
        """True when every datagram sent arrived intact."""
        delivered = self.counts.delivered
        return delivered == self.sent and (not self.checked or self.counts.intact == delivered)

    def figure(self, name: str) -> float | None:
        """A figure by its JSON name: an attribute, or an op-time percentile like ``ns_per_op_p99``."""
        if name.startswith(OP_PERCENTILE):
            return (self.op_ns_percentiles or {}).get(name.removeprefix(OP_PERCENTILE))
        value = self.count(name) if name in counts.NAMES else getattr(self, name)
        return None if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see docs/benchmark.md)."""
        out = asdict(self)
        for name in ("op_ns_percentiles", "counts", "checked", "sequenced"):
            del out[name]
        out.update((name, self.count(name)) for name in counts.NAMES)
        out["host"] = None if self.host is None else self.host.to_dict()
        for name, value in (self.op_ns_percentiles or {}).items():
            out[OP_PERCENTILE + name] = value
        out.update(
            derived(
                self,
                ("ns_per_op", "packets_per_s", "mb_per_s", "ns_per_packet", "dut_forwarded_pps", "reordered_ratio"),
            )
        )
        return out


@dataclass(frozen=True)
class Spread:
    """Median with min and max over a writer's samples (one sample: all three equal)."""

    median: float
    low: float
    high: float


@dataclass
class WriterResult:
    """Every sample of one writer at one readers count, or why it could not run."""

    writer: str
    readers: int
    message_size: int
    delivered_size: int
    source: str = "rawpacer"
    samples: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    """What the writer said about how it ran (``Writer.facts``), merged into the JSON row."""

    @property
    def trimmed_bytes(self) -> int:
        """Bytes cut from each message to fit the link."""
        return self.message_size - self.delivered_size

    def spread(self, name: str) -> Spread | None:
        """Median/min/max of a Sample attribute over the samples that have it."""
        values = [v for v in (s.figure(name) for s in self.samples) if v is not None]
        if not values:
            return None
        return Spread(statistics.median(values), min(values), max(values))

    def values(self, name: str) -> list[float]:
        """One figure of every sample that has it, in pass order."""
        return [v for v in (s.figure(name) for s in self.samples) if v is not None]

    def interval(self, name: str) -> confidence.Interval | None:
        """The median of one figure with its bootstrap 95 % interval (None below MIN_SAMPLES passes)."""
        values = self.values(name)
        return confidence.median_ci(values) if len(values) >= confidence.MIN_SAMPLES else None

    def median(self, name: str) -> float | None:
        """Median of one figure over the samples (None when there are none)."""
        found = self.spread(name)
        return None if found is None else found.median

    def total(self, name: str) -> int | None:
        """Sum of one count over the samples."""
        values: list[int | None] = [s.count(name) if name in counts.NAMES else getattr(s, name) for s in self.samples]
        found = [v for v in values if v is not None]
        return None if not values or len(found) < len(values) else sum(found)

    def pacing(self) -> dict[str, Any] | None:
        """A paced row's pacing figures: those of its sample with the median achieved rate."""
        paced = sorted(
            (s for s in self.samples if s.pacing is not None),
            key=lambda s: (s.pacing or {}).get("rate_achieved_pps") or 0.0,
        )
        return paced[(len(paced) - 1) // 2].pacing if paced else None

    @property
    def all_intact(self) -> bool:
        """True when every sample delivered every datagram intact."""
        return self.error is None and all(s.all_intact for s in self.samples)

    def reordering(self) -> tuple[int, float, int] | None:
        """Over the samples whose datagrams carried sequences: datagrams reordered, the reordered
        ratio (RFC 4737 4.1) and the largest extent (4.2.1); None when none did."""
        measured = total(s.counts for s in self.samples if s.sequenced)
        if not any(s.sequenced for s in self.samples):
            return None
        ratio = measured.reordered / measured.intact if measured.intact else 0.0
        return measured.reordered, ratio, measured.reorder_extent

    def to_dict(self, ci: bool = False) -> dict[str, Any]:
        """The JSON row: medians under the plain keys (with ``ci``, each one's bootstrap interval under
        ``<name>_ci``), totals of counts, every sample beside."""
        row: dict[str, Any] = {
            "writer": self.writer,
            "source": self.source,
            "readers": self.readers,
            "message_size": self.message_size,
            "delivered_size": self.delivered_size,
            "trimmed_bytes": self.trimmed_bytes,
            "error": self.error,
            "notes": list(self.notes),
            **self.facts,
        }
        for name in (
            "ns_per_op",
            *(OP_PERCENTILE + p for p in PERCENTILES),
            "packets_per_s",
            "mb_per_s",
            "ns_per_packet",
            "bytes_per_op",
            "allocs_per_op",
            "reader_cpu_ns_per_op",
            "reader_capacity_pps",
        ):
            found = self.spread(name)
            row[name] = None if found is None else found.median
            row[f"{name}_range"] = None if found is None else [found.low, found.high]
            if ci:
                interval = self.interval(name)
                row[f"{name}_ci"] = None if interval is None else interval.to_dict()
        counts = (
            "ops",
            "ops_incomplete",
            "sent",
            "delivered",
            "intact",
            "corrupt",
            "duplicate",
            "lost",
            "socket_drops",
            "payload_bytes",
        )
        for name in counts:
            row[name] = self.total(name)
        row["all_intact"] = self.all_intact
        reordering = self.reordering()
        row["reordered"], row["reordered_ratio"], row["reorder_extent"] = reordering or (0, None, None)
        row.update(self.pacing() or {})
        row["samples"] = [s.to_dict() for s in self.samples]
        return row


@dataclass
class Report(RunRecord[WriterResult]):
    """A whole compare run: where, with what parameters, each writer's result, and notes."""

    def find(self, writer: str, readers: int | None = None) -> WriterResult | None:
        """The row of ``writer`` at ``readers``, if any."""
        for result in self.results:
            if result.writer == writer and (readers is None or result.readers == readers):
                return result
        return None

    def speedup(self, result: WriterResult, baseline: str = BASELINE) -> float | None:
        """How many times faster than ``baseline`` at the same readers count (ns/op ratio)."""
        base = self.find(baseline, result.readers)
        mine, theirs = result.median("ns_per_op"), base and base.median("ns_per_op")
        return theirs / mine if mine and theirs else None

    @property
    def ci(self) -> bool:
        """True when the run asked for bootstrap intervals (``--ci``, or ``--count`` 3 or more)."""
        return bool(self.params.get("ci"))

    def speedup_interval(self, result: WriterResult, baseline: str = BASELINE) -> confidence.Interval | None:
        """``speedup`` with its bootstrap 95 % interval: the baseline's ns/op passes over this row's, each
        resampled on its own (None when either has fewer than MIN_SAMPLES passes)."""
        base = self.find(baseline, result.readers)
        mine, theirs = result.values("ns_per_op"), [] if base is None else base.values("ns_per_op")
        if min(len(mine), len(theirs)) < confidence.MIN_SAMPLES or not all(mine):
            return None
        return confidence.ratio_ci(theirs, mine)

    @property
    def readers_counts(self) -> list[int]:
        """The readers counts of the run, in order."""
        return sorted({r.readers for r in self.results})

    def sweep(self) -> list[dict[str, Any]]:
        """Per writer: ns per delivered packet at each readers count, and last/first ratio."""
        counts = self.readers_counts
        if len(counts) < 2:
            return []
        rows = []
        for writer in dict.fromkeys(r.writer for r in self.results):
            points = {}
            for count in counts:
                found = self.find(writer, count)
                points[count] = found.median("ns_per_packet") if found else None
            first, last = points[counts[0]], points[counts[-1]]
            ratio = last / first if first and last else None
            rows.append({"writer": writer, "ns_per_packet": points, "ratio": ratio})
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: machine, parameters, notes and every row (see docs/benchmark.md)."""
        return {
            **self.header(),
            "results": [
                dict(
                    r.to_dict(self.ci),
                    speedup_vs_udp_sendto=self.speedup(r),
                    speedup_vs_go_baseline=self.speedup(r, GO_BASELINE),
                    **(
                        {
                            "speedup_vs_udp_sendto_ci": _dict(self.speedup_interval(r)),
                            "speedup_vs_go_baseline_ci": _dict(self.speedup_interval(r, GO_BASELINE)),
                        }
                        if self.ci
                        else {}
                    ),
                )
                for r in self.results
            ],
            "sweep": [
                {
                    "writer": s["writer"],
                    "ratio_last_first": s["ratio"],
                    "points": [{"readers": k, "ns_per_packet": v} for k, v in s["ns_per_packet"].items()],
                }
                for s in self.sweep()
            ],
        }


def _dict(interval: confidence.Interval | None) -> dict[str, float] | None:
    return None if interval is None else interval.to_dict()
