"""Frame size mixes: IMIX, a custom ``SIZE:WEIGHT,...`` mix, or one size, and the order frames take them in.

Sizes are Ethernet frame sizes as RFC 2544 (section 9.1) counts them: destination MAC to FCS inclusive,
so 64 is the smallest Ethernet frame. Turning one into a UDP payload depends on the IP version and
the MTU, which the caller knows (``rawpacer.bench.rfc2544_suite.sizes.payload_for``).

"imix" is the *simple IMIX* of the traffic-generator literature: 64, 594 and 1518-byte frames in the
ratio 7:4:1 (from backbone measurements of the late 1990s, e.g. NLANR/CAIDA; used so by Ixia, Spirent
and Cisco's TRex). RFC 6985 ("IMIX Genome") notes that no IMIX is standard, gives mixes a notation and
asks that a test report the sizes and the order they were sent in: ``SizeMix`` carries sizes and weights,
and its order is repeatable.

The deterministic order is smooth weighted round robin (nginx's upstream balancer): every size gets
its weight's share of every window, spread as evenly as integers allow (for 7:4:1: 64 594 64 64 594 64 1518
64 594 64 594 64), rather than runs of one size. A seeded random order draws each frame's size in proportion instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rawpacer.errors import UsageError, require
from rawpacer.limits import MAX_MTU, MAX_SEED

MIN_FRAME_SIZE = 64
"""The smallest Ethernet frame, FCS included (IEEE 802.3; RFC 2544, section 9.1)."""
MAX_FRAME_SIZE = MAX_MTU + 18
"""The largest frame Linux can send: the largest MTU plus the Ethernet header and FCS."""
MAX_WEIGHT = 1_000_000
"""Largest weight of one size: the deterministic order's period is the weights' sum."""

SIMPLE_IMIX = ((64, 7), (594, 4), (1518, 1))
"""The simple IMIX: (frame size, weight)."""

NAMED_MIXES = {"imix": SIMPLE_IMIX}


@dataclass(frozen=True)
class SizeMix:
    """Frame sizes and their integer weights (a single size has weight 1)."""

    sizes: tuple[int, ...]
    weights: tuple[int, ...]

    @property
    def period(self) -> int:
        """Frames after which the deterministic order repeats: the sum of the weights."""
        return sum(self.weights)

    def cycle(self) -> npt.NDArray[np.int64]:
        """One period of the deterministic order (smooth weighted round robin)."""
        current = [0] * len(self.sizes)
        order = []
        for _ in range(self.period):
            current = [c + w for c, w in zip(current, self.weights)]
            pick = current.index(max(current))
            current[pick] -= self.period
            order.append(self.sizes[pick])
        return np.array(order, dtype=np.int64)

    def sequence(self, n: int, seed: int | None = None) -> npt.NDArray[np.int64]:
        """Sizes of ``n`` frames: the interleaved order repeated, or with a ``seed`` drawn at random in
        proportion to the weights (numpy's PCG64: the same seed, the same sizes)."""
        require(isinstance(n, int) and n >= 0, f"frame count {n!r} is not a non-negative integer")
        if seed is None:
            return np.resize(self.cycle(), n) if n else np.zeros(0, dtype=np.int64)
        require(isinstance(seed, int) and 0 <= seed <= MAX_SEED, f"seed {seed!r} is out of range 0-{MAX_SEED}")
        rng = np.random.Generator(np.random.PCG64(seed))
        chances = np.array(self.weights, dtype=np.float64) / self.period
        return rng.choice(np.array(self.sizes, dtype=np.int64), size=n, p=chances)

    def counts(self, n: int, seed: int | None = None) -> dict[int, int]:
        """How many of ``n`` frames take each size (every size listed, in the mix's order)."""
        drawn = self.sequence(n, seed)
        return {size: int(np.count_nonzero(drawn == size)) for size in self.sizes}

    def __str__(self) -> str:
        return ",".join(f"{s}:{w}" for s, w in zip(self.sizes, self.weights))


def _integer(what: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not an integer (allowed: {low}-{high})") from None
    require(low <= value <= high, f"{what} {value} is out of range {low}-{high}")
    return value


def parse_sizes(text: str) -> SizeMix:
    """``imix``, ``SIZE:WEIGHT,...`` (e.g. ``64:7,594:4,1518:1``) or one ``SIZE`` -> SizeMix.

    UsageError (one line) for a size outside 64-65554, a weight outside 1-1000000, a size given twice
    or anything else.
    """
    require(isinstance(text, str) and text.strip() != "", f"size mix {text!r} is empty; use imix, 64:7,594:4 or 1518")
    named = NAMED_MIXES.get(text.strip().lower())
    pairs = list(named) if named else []
    if not named:
        for part in text.split(","):
            size_text, _, weight_text = part.strip().partition(":")
            size = _integer("frame size", size_text, MIN_FRAME_SIZE, MAX_FRAME_SIZE)
            weight = _integer(f"size {size}: weight", weight_text, 1, MAX_WEIGHT) if weight_text else 1
            require(all(size != s for s, _ in pairs), f"frame size {size} is given twice in {text!r}")
            pairs.append((size, weight))
    return SizeMix(tuple(s for s, _ in pairs), tuple(w for _, w in pairs))
