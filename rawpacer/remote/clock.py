"""The remote clock's offset from ours, measured over the control channel like NTP (RFC 5905, 8).

Each exchange reads our clock (t0), asks the agent for its own (t1), reads ours again (t3). If the
agent's read happened anywhere in the round trip, its offset is t1 - (t0 + t3) / 2 give or take
(t3 - t0) / 2. The exchanges with the shortest round trips bound it best (the channel's queueing
only adds delay), so the estimate is the offset of the fastest exchange and its uncertainty half
that round trip. CLOCK_REALTIME both sides: the kernel's receive timestamps are on it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

EXCHANGES = 64
BEST = 8
"""Exchanges kept (the fastest round trips); their spread is reported beside the bound."""
OFFSET_ENV = "RAWPACER_TEST_CLOCK_OFFSET_NS"
"""Test only: the agent adds this many ns to every clock read it reports (an injected offset)."""


@dataclass(frozen=True)
class Exchange:
    """One clock exchange: our read before, the agent's read, our read after (ns, CLOCK_REALTIME)."""

    t0: int
    t1: int
    t3: int

    @property
    def rtt_ns(self) -> int:
        """The round trip."""
        return self.t3 - self.t0

    @property
    def offset_ns(self) -> float:
        """The agent's clock minus ours, if its read sat in the middle of the round trip."""
        return self.t1 - (self.t0 + self.t3) / 2


@dataclass(frozen=True)
class Offset:
    """The agent's clock minus ours and the bound on the error: the truth is in offset ± uncertainty."""

    offset_ns: float
    uncertainty_ns: float
    spread_ns: float
    """Standard deviation of the offsets of the ``BEST`` fastest exchanges (how steady they were)."""
    exchanges: int

    def to_dict(self) -> dict[str, float | int]:
        """The JSON form."""
        return {
            "offset_ns": round(self.offset_ns),
            "uncertainty_ns": round(self.uncertainty_ns),
            "spread_ns": round(self.spread_ns),
            "exchanges": self.exchanges,
        }

    def describe(self) -> str:
        """``offset +12.3 µs ± 45.6 µs``."""
        return f"clock offset {self.offset_ns / 1e3:+.1f} µs ± {self.uncertainty_ns / 1e3:.1f} µs"


def estimate(exchanges: Sequence[Exchange]) -> Offset:
    """The offset of the fastest exchange, its half round trip as the bound (NTP's clock filter, simplified)."""
    if not exchanges:
        raise ValueError("no clock exchanges to estimate from")
    fastest = sorted(exchanges, key=lambda e: e.rtt_ns)[:BEST]
    offsets = [e.offset_ns for e in fastest]
    spread = statistics.pstdev(offsets) if len(offsets) > 1 else 0.0
    return Offset(fastest[0].offset_ns, fastest[0].rtt_ns / 2, spread, len(exchanges))


def measure(read_remote: Callable[[], int], read_local: Callable[[], int], count: int = EXCHANGES) -> Offset:
    """``count`` exchanges with ``read_remote`` (one round trip to the agent each), estimated."""
    done = []
    for _ in range(count):
        t0 = read_local()
        t1 = read_remote()
        t3 = read_local()
        done.append(Exchange(t0, t1, t3))
    return estimate(done)


@dataclass(frozen=True)
class Latency:
    """One-way latency from our send start to the agent's first arrival, when the clocks allow it."""

    median_ns: float | None
    uncertainty_ns: float
    why_none: str | None = None

    def to_dict(self) -> dict[str, float | str | None]:
        """The JSON form."""
        return {
            "median_ns": None if self.median_ns is None else round(self.median_ns),
            "uncertainty_ns": round(self.uncertainty_ns),
            "why_none": self.why_none,
        }

    def describe(self) -> str:
        """``one-way latency 84.1 µs ± 20.0 µs`` or why there is none."""
        if self.median_ns is None:
            return f"no one-way latency: {self.why_none}"
        return f"one-way latency {self.median_ns / 1e3:.1f} µs ± {self.uncertainty_ns / 1e3:.1f} µs"


def one_way(samples_ns: Sequence[float], offset: Offset) -> Latency:
    """The median of raw (remote arrival - our send) samples, corrected by ``offset``; none when the
    uncertainty is larger than the figure itself (the clocks cannot tell it)."""
    if not samples_ns:
        return Latency(None, offset.uncertainty_ns, "no op had an arrival")
    figure = statistics.median(samples_ns) - offset.offset_ns
    if offset.uncertainty_ns >= abs(figure):
        why = f"the clock offset's uncertainty ({offset.uncertainty_ns / 1e3:.1f} µs) is larger than the figure ({figure / 1e3:.1f} µs)"
        return Latency(None, offset.uncertainty_ns, why)
    return Latency(figure, offset.uncertainty_ns)
