"""When each departure of a paced stream is due, as an offset in ns from the stream's start.

Departure i sends one burst of N datagrams. A constant schedule puts it at exactly i * N / rate
(floored to the ns), computed from i alone, so no error accumulates however long the stream. A
Poisson schedule draws exponential gaps with mean N / rate from a seeded numpy Generator (PCG64),
in chunks, rounds each to the ns and sums them as integers: a seed always gives the same offsets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from rawpacer.errors import require
from rawpacer.limits import MAX_BURST, MAX_RATE_PPS, MAX_SEED, MIN_RATE_PPS
from rawpacer.pacing.rate import PATTERNS, PaceSpec

PERIOD_DENOMINATOR = 1 << 31
"""Largest denominator of a schedule's period (a fraction of ns): exact for any rate written with
up to 9 significant digits; beyond, the nearest such fraction (off by under 1e-9 ns per departure)."""

POISSON_CHUNK = 8192
"""Gaps a Poisson schedule draws at a time."""

Offsets = npt.NDArray[np.int64]


class Schedule(ABC):
    """Departure offsets of a paced stream: ``offset_ns(i)`` one at a time, ``offsets`` in bulk."""

    pattern: str

    def __init__(self, rate_pps: float | Fraction, burst: int = 1) -> None:
        # A float rate is taken as the decimal it prints as (123456.789, not its binary neighbour).
        rate = rate_pps if isinstance(rate_pps, Fraction) else Fraction(repr(float(rate_pps)))
        require(
            MIN_RATE_PPS <= rate <= MAX_RATE_PPS,
            f"rate {float(rate):g} is out of range; allowed: {MIN_RATE_PPS:g}-{MAX_RATE_PPS:,.0f} packets/s",
        )
        require(
            isinstance(burst, int) and not isinstance(burst, bool) and 1 <= burst <= MAX_BURST,
            f"burst {burst!r} is out of range; use an integer 1-{MAX_BURST}",
        )
        self.rate_pps = float(rate)
        self.burst = burst
        period = (Fraction(burst * 10**9) / rate).limit_denominator(PERIOD_DENOMINATOR)
        self.period_ns = period
        """The (mean) gap between departures in ns, as an exact fraction."""

    @property
    def gap_ns(self) -> float:
        """The (mean) gap between departures in ns: burst * 1e9 / rate."""
        return float(self.period_ns)

    def departures(self, datagrams: int) -> int:
        """Departures that send ``datagrams`` datagrams (the last burst may be short)."""
        return -(-datagrams // self.burst)

    @property
    def seed(self) -> int | None:
        """The seed the schedule was drawn from (None: nothing random)."""
        return None

    @abstractmethod
    def offset_ns(self, i: int) -> int:
        """When departure ``i`` (0, 1, ...) is due, in ns after departure 0."""

    @abstractmethod
    def offsets(self, start: int, count: int) -> Offsets:
        """``offset_ns(i)`` for i in start .. start+count-1, as int64."""


class ConstantSchedule(Schedule):
    """Evenly spaced departures: departure i at floor(i * period), period = burst * 1e9 / rate ns."""

    pattern = "constant"

    def __init__(self, rate_pps: float | Fraction, burst: int = 1) -> None:
        super().__init__(rate_pps, burst)
        self._q, self._r = divmod(self.period_ns.numerator, self.period_ns.denominator)
        self._den = self.period_ns.denominator

    def offset_ns(self, i: int) -> int:
        """floor(i * period), exactly: i*q + (i*r) // den with period = q + r/den."""
        return i * self._q + i * self._r // self._den

    def offsets(self, start: int, count: int) -> Offsets:
        # offset(start + k) = offset(start) + k*q + (rem + k*r) // den, rem = start*r mod den: the
        # first term in Python ints, the rest int64 (k*r < 2**63 while k < 2**32).
        carry, rem = divmod(start * self._r, self._den)
        k = np.arange(count, dtype=np.int64)
        return (start * self._q + carry) + k * self._q + (rem + k * self._r) // self._den


class PoissonSchedule(Schedule):
    """Departures of a Poisson process: exponential gaps with mean burst / rate, seeded and reproducible.

    Departure 0 is at 0; departure i at the sum of the first i gaps, each rounded to the ns. Gaps
    are drawn POISSON_CHUNK at a time; going back to an earlier chunk replays the generator.
    """

    pattern = "poisson"

    def __init__(self, rate_pps: float | Fraction, burst: int = 1, *, seed: int) -> None:
        super().__init__(rate_pps, burst)
        require(
            isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED,
            f"seed {seed!r} is out of range; use an integer 0-{MAX_SEED}",
        )
        self._seed = seed
        self._restart()

    @property
    def seed(self) -> int:
        return self._seed

    def _restart(self) -> None:
        self._rng = np.random.Generator(np.random.PCG64(self._seed))
        self._chunk = -1
        self._base = 0
        self._cum: Offsets = np.zeros(0, dtype=np.int64)

    def _load(self, chunk: int) -> None:
        """Make chunk ``chunk`` (departures chunk*C+1 .. chunk*C+C) the current one."""
        if chunk < self._chunk:
            self._restart()
        while self._chunk < chunk:
            gaps = np.rint(self._rng.exponential(float(self.period_ns), POISSON_CHUNK)).astype(np.int64)
            self._base = int(self._cum[-1]) if self._cum.size else 0
            self._cum = self._base + np.cumsum(gaps)
            self._chunk += 1

    def offset_ns(self, i: int) -> int:
        if i == 0:
            return 0
        chunk, k = divmod(i - 1, POISSON_CHUNK)
        if chunk != self._chunk:
            self._load(chunk)
        return int(self._cum[k])

    def offsets(self, start: int, count: int) -> Offsets:
        out = np.empty(count, dtype=np.int64)
        done = 0
        if start == 0 and count:
            out[0] = 0
            done = 1
        while done < count:
            chunk, k = divmod(start + done - 1, POISSON_CHUNK)
            self._load(chunk)
            take = min(count - done, POISSON_CHUNK - k)
            out[done : done + take] = self._cum[k : k + take]
            done += take
        return out


def make_schedule(spec: PaceSpec, frame_bytes: int | Fraction | None = None) -> Schedule:
    """The schedule a PaceSpec asks for (a bit rate needs each datagram's link bytes)."""
    rate = spec.rate.exact_pps(frame_bytes)
    require(spec.pattern in PATTERNS, f"pattern {spec.pattern!r} is not allowed; use one of: {', '.join(PATTERNS)}")
    if spec.pattern == "poisson":
        require(spec.seed is not None, "a poisson schedule needs a seed; PaceSpec.parse draws one")
        assert spec.seed is not None  # for mypy: checked just above
        return PoissonSchedule(rate, spec.burst, seed=spec.seed)
    return ConstantSchedule(rate, spec.burst)
