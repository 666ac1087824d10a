"""Order statistics of per-op times: the tail a mean (Go's ns/op) hides."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = {"p50": 50.0, "p99": 99.0, "p999": 99.9, "max": 100.0}
"""The tail points every latency-like figure reports, by their JSON names."""

CDF_POINTS = 201
"""Quantiles kept per sample for a CDF plot: enough for a smooth curve, few enough for JSON."""


def percentiles(values: Sequence[int] | np.ndarray) -> dict[str, float] | None:
    """``{"p50", "p99", "p999", "max"}`` of ``values`` (None when there are none)."""
    if len(values) == 0:
        return None
    points = np.percentile(np.asarray(values, dtype=np.float64), list(PERCENTILES.values()))
    return {name: float(value) for name, value in zip(PERCENTILES, points)}


def cdf(values: Sequence[int] | np.ndarray, points: int = CDF_POINTS) -> list[float]:
    """``points`` evenly spaced quantiles of ``values`` (0th to 100th): a CDF small enough to keep."""
    if len(values) == 0:
        return []
    return [float(v) for v in np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, points))]
