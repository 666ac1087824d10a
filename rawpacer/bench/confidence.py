"""How sure a median is: percentile-bootstrap 95 % intervals for a median and for a ratio of medians.

``compare --count N`` repeats each writer N times; the median of those passes is the figure, and its
interval says how far another N passes could plausibly put it. The bootstrap makes no assumption
about the passes' distribution (op times on a shared VM are skewed, with stalls): it resamples the
passes with replacement ``RESAMPLES`` times and takes the 2.5th and 97.5th percentiles of the
resampled medians (Efron & Tibshirani, "An Introduction to the Bootstrap", ch. 13). A ratio (vs
udp-sendto, vs the Go baseline) resamples each side on its own, since their passes are independent.
Seeded: the same samples always give the same interval.

Five passes, one of them slowed by the host: the median shrugs the outlier off, but its interval does
not, since 6 % of resamples draw it three times or more. Few passes give honest, wide intervals.

>>> found = median_ci([10.0, 11.0, 12.0, 13.0, 30.0])
>>> found.estimate, found.low, found.high
(12.0, 10.0, 30.0)
>>> found = median_ci([10.0, 11.0, 12.0, 13.0, 30.0] * 4)
>>> found.estimate, found.low, found.high
(12.0, 11.0, 13.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from rawpacer.errors import require

RESAMPLES = 2000
"""Bootstrap resamples: enough that the 2.5th and 97.5th percentiles move by well under the spread."""

LEVEL = 0.95
"""The intervals' confidence level."""

SEED = 2544
"""The resampling seed: fixed, so an interval is reproducible from the JSON's samples."""

MIN_SAMPLES = 3
"""The fewest passes an interval is given for: two passes resample to only three distinct medians."""


@dataclass(frozen=True)
class Interval:
    """A figure (``estimate``, computed on the samples themselves) and its bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float = LEVEL
    resamples: int = RESAMPLES

    def to_dict(self) -> dict[str, float]:
        """The JSON form: ``{"estimate", "low", "high", "level", "resamples"}``."""
        return asdict(self)


def _medians(values: npt.NDArray[np.float64], rng: np.random.Generator, resamples: int) -> npt.NDArray[np.float64]:
    """The median of each of ``resamples`` resamples (with replacement, same size) of ``values``."""
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    found: npt.NDArray[np.float64] = np.median(values[picks], axis=1)
    return found


def _checked(name: str, values: Sequence[float] | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    data = np.asarray(values, dtype=np.float64)
    require(data.size >= 1 and bool(np.all(np.isfinite(data))), f"{name}: no samples, or one not finite")
    return data


def _bounds(resampled: npt.NDArray[np.float64], level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return float(low), float(high)


def median_ci(
    values: Sequence[float] | npt.NDArray[np.float64],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> Interval:
    """The median of ``values`` and its percentile-bootstrap interval."""
    data = _checked("median interval", values)
    rng = np.random.default_rng(seed)
    low, high = _bounds(_medians(data, rng, resamples), level)
    return Interval(float(np.median(data)), low, high, level, resamples)


def ratio_ci(
    numerator: Sequence[float] | npt.NDArray[np.float64],
    denominator: Sequence[float] | npt.NDArray[np.float64],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> Interval:
    """median(numerator) / median(denominator) and its interval, each side resampled on its own.

    >>> ratio_ci([200.0, 210.0, 190.0], [100.0, 100.0, 100.0]).estimate
    2.0
    """
    top, bottom = _checked("ratio interval", numerator), _checked("ratio interval", denominator)
    require(bool(np.all(bottom > 0)), "ratio interval: the denominator's samples must be positive")
    rng = np.random.default_rng(seed)
    ratios = _medians(top, rng, resamples) / _medians(bottom, rng, resamples)
    low, high = _bounds(ratios, level)
    return Interval(float(np.median(top) / np.median(bottom)), low, high, level, resamples)
