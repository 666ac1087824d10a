"""Go benchmark lines (``BenchmarkFanout/<writer>-<cores> N ns/op ...``) for ``benchstat``."""

from __future__ import annotations

from collections.abc import Iterator

from rawpacer.bench.golines import FAMILY
from rawpacer.bench.result import Report, Sample


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 or value == int(value) else f"{value:.2f}"


def format_sample(name: str, procs: int, sample: Sample) -> str | None:
    """One sample as a Go line: ns/op, MB/s, B/op, allocs/op (when known) and packets/s; None when
    no op of the sample completed (there is no time to report)."""
    if sample.ns_per_op is None or sample.mb_per_s is None or sample.packets_per_s is None:
        return None
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
            line = None
            if index < len(result.samples):
                line = format_sample(benchmark_name(result.writer, result.readers, sweep), procs, result.samples[index])
            if line is not None:
                yield line
    for result in report.results:
        if result.error:
            yield f"--- FAIL: {benchmark_name(result.writer, result.readers, sweep)}: {result.error}"
