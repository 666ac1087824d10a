"""Order statistics of per-op times and latencies: the tail a mean (Go's ns/op) hides.

The percentiles are pacing's (``rawpacer.pacing.stats``: order statistics at p50, p99, p99.9 and
max), so every tail figure rawpacer reports is computed one way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rawpacer.pacing.stats import QUANTILES, percentiles

__all__ = ["CDF_POINTS", "PERCENTILES", "cdf", "percentiles"]

PERCENTILES = tuple(QUANTILES)
"""The tail points every latency-like figure reports, by their JSON names."""

CDF_POINTS = 201
"""Quantiles kept per sample for a CDF plot: enough for a smooth curve, few enough for JSON."""


def cdf(values: Sequence[int] | np.ndarray, points: int = CDF_POINTS) -> list[float]:
    """``points`` evenly spaced quantiles of ``values`` (0th to 100th): a CDF small enough to keep."""
    if len(values) == 0:
        return []
    return [float(v) for v in np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, points))]
