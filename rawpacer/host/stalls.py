"""The stall probe of ``doctor``: how often, and for how long, this machine takes the CPU away.

A tight loop reads CLOCK_MONOTONIC for a second; two reads a pause apart mean the loop did not run in
between (the hypervisor ran another guest, the scheduler another task, an interrupt took long). One
iteration costs ~0.1 µs in Python, so a pause over 50 µs is the machine's, not the loop's; the garbage
collector is off while it runs. (rawpacer/_pace.c has no such loop to reuse: its waits sleep.)
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

from rawpacer.host.activity import STALL_NS

PAUSE_NS = (50_000, 1_000_000, STALL_NS)
"""Pauses counted: over 50 µs (a vCPU exit, an interrupt), over 1 ms (a scheduler slice lost), and over
the stall that spoils a figure (``activity.STALL_NS``, 10 ms)."""

PROBE_S = 1.0


@dataclass(frozen=True)
class StallProbe:
    """What the loop saw: ``seconds`` of clock reads, pauses over each of PAUSE_NS, the longest, and
    the clock reads made (a loop far under 10 million a second was itself slowed)."""

    seconds: float
    over_ns: dict[int, int]
    longest_ns: int
    reads: int

    def line(self) -> str:
        """``doctor``'s line."""
        counts = ", ".join(f"{n} over {_ns(limit)}" for limit, n in self.over_ns.items())
        return (
            f"stall probe ({self.seconds:g} s of clock reads): pauses {counts}; "
            f"longest {_ns(self.longest_ns)}; {self.reads / self.seconds / 1e6:.1f}M reads/s"
        )


def _ns(ns: int) -> str:
    """``50 µs``, ``1 ms``, ``22.1 ms``."""
    return f"{ns / 1e6:.3g} ms" if ns >= 1_000_000 else f"{ns / 1e3:.3g} µs"


def count_pauses(gaps_ns: list[int], limits: tuple[int, ...] = PAUSE_NS) -> dict[int, int]:
    """How many of ``gaps_ns`` exceed each limit."""
    return {limit: sum(1 for gap in gaps_ns if gap > limit) for limit in limits}


def probe(seconds: float = PROBE_S) -> StallProbe:
    """Read CLOCK_MONOTONIC in a tight loop for ``seconds``; count the pauses between reads."""
    now, floor = time.monotonic_ns, min(PAUSE_NS)
    gaps: list[int] = []
    reads = 0
    enabled = gc.isenabled()
    gc.disable()
    try:
        last = start = now()
        end = start + int(seconds * 1e9)
        while last < end:
            current = now()
            if current - last > floor:
                gaps.append(current - last)
            last = current
            reads += 1
    finally:
        if enabled:
            gc.enable()
    return StallProbe(seconds, count_pauses(gaps), max(gaps, default=0), reads)
