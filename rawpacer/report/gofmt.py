"""Go benchmark lines (``BenchmarkFanout/<writer>-<cores> N ns/op ...``) for ``benchstat``, and their parser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from rawpacer.bench.result import Report, Sample

FAMILY = "BenchmarkFanout"
_LINE = re.compile(r"^(Benchmark\S+?)(?:-(\d+))?\s+(\d+)((?:\s+[-+.\deE]+\s+\S+)+)\s*$")


@dataclass
class GoLine:
    """One parsed benchmark line: name, GOMAXPROCS suffix, b.N and its value/unit pairs."""

    name: str
    procs: int
    n: int
    metrics: dict[str, float] = field(default_factory=dict)


def parse_lines(text: str) -> list[GoLine]:
    """Every benchmark result line in ``go test -bench`` output (other lines are skipped)."""
    found = []
    for raw in text.splitlines():
        match = _LINE.match(raw.strip())
        if not match:
            continue
        pairs = match.group(4).split()
        metrics = {unit: float(value) for value, unit in zip(pairs[0::2], pairs[1::2])}
        found.append(GoLine(match.group(1), int(match.group(2) or 1), int(match.group(3)), metrics))
    return found


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 or value == int(value) else f"{value:.2f}"


def format_sample(name: str, procs: int, sample: Sample) -> str:
    """One sample as a Go line: ns/op, MB/s, B/op, allocs/op (when known) and packets/s."""
    parts = [f"{name}-{procs}", str(sample.ops), f"{_number(sample.ns_per_op)} ns/op", f"{sample.mb_per_s:.2f} MB/s"]
    if sample.bytes_per_op is not None:
        parts.append(f"{sample.bytes_per_op:.0f} B/op")
    if sample.allocs_per_op is not None:
        parts.append(f"{sample.allocs_per_op:.0f} allocs/op")
    parts.append(f"{sample.packets_per_s:.0f} packets/s")
    return "\t".join(parts)


def benchmark_name(writer: str, readers: int, sweep: bool) -> str:
    """``BenchmarkFanout/<writer>``, with ``/readers=N`` when a run covers several counts."""
    return f"{FAMILY}/{writer}" + (f"/readers={readers}" if sweep else "")


def report_lines(report: Report) -> Iterator[str]:
    """A header like ``go test``'s, then each writer's samples interleaved round by round."""
    machine = report.machine
    yield f"goos: {str(machine.get('os', 'linux')).lower()}"
    yield f"cpu: {machine.get('cpu', 'unknown')}"
    yield "pkg: rawpacer"
    procs = int(machine.get("cores", 1))
    sweep = len(report.readers_counts) > 1
    rounds = max((len(r.samples) for r in report.results), default=0)
    for index in range(rounds):
        for result in report.results:
            if index < len(result.samples):
                yield format_sample(benchmark_name(result.writer, result.readers, sweep), procs, result.samples[index])
    for result in report.results:
        if result.error:
            yield f"--- FAIL: {benchmark_name(result.writer, result.readers, sweep)}: {result.error}"
