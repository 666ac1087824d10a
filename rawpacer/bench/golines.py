"""Reading ``go test -bench`` output: the Go seed's result lines, and the family rawpacer writes in.

The bench layer reads them (``gobench``); the report layer writes them (``report.gofmt``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FAMILY = "BenchmarkFanout"
"""The benchmark name rawpacer's own lines carry: ``BenchmarkFanout/<writer>``."""
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
