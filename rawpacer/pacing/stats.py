"""How well a stream was paced, from the kernel's receive timestamps (int64 ns): pure numpy.

Timestamps from every reader are merged into arrival order. Departure k's datagrams are arrivals
k*N .. k*N+N-1 (burst N; datagrams arrive in the order they left, as they do on lo and veth, and
none is missing), so a departure's time is its first arrival. From those:

- achieved rate = (D - 1) * N / (t of the last departure - t of the first), D departures; for
  N = 1 that is (n - 1) / (t_last - t_first);
- gaps between departures, and their deviation from the ideal gap, |gap - N / rate|, at p50, p99,
  p99.9 and max (percentiles are order statistics: observed values, never interpolated);
- stalls: gaps of two ideal gaps or more, a departure time that passed with nothing sent
  (constant pattern only: a Poisson stream's long gaps are its nature);
- Poisson: the coefficient of variation of the gaps (1 for exponential ones) and the
  Kolmogorov-Smirnov statistic of the gaps against the exponential with mean N / rate, with its
  asymptotic p-value;
- with the pacer's record: the schedule lateness of every departure (p50/p99/max), and the
  number and total length of the pacer's re-anchors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rawpacer.errors import require

QUANTILES = {"p50": 0.5, "p99": 0.99, "p999": 0.999, "max": 1.0}
"""The percentiles every pacing figure is given at, by their JSON names."""

STALL_GAPS = 2
"""A gap of this many ideal gaps or more is a stall: at least one departure time passed unused."""

Timestamps = npt.NDArray[np.int64]


def percentiles(values: npt.ArrayLike, keys: Sequence[str] = tuple(QUANTILES)) -> dict[str, Any]:
    """``{"p50": ..., "p99": ..., "p999": ..., "max": ...}`` of ``values`` (None each when empty).

    Each is an order statistic: the smallest observed value with at least that fraction of the
    values at or below it.
    """
    data = np.asarray(values)
    if data.size == 0:
        return dict.fromkeys(keys)
    found = np.quantile(data, [QUANTILES[k] for k in keys], method="inverted_cdf")
    return {key: value.item() for key, value in zip(keys, found)}


def merge_timestamps(arrays: Iterable[npt.ArrayLike]) -> Timestamps:
    """Every reader's receive timestamps in one array, in arrival order."""
    parts = [np.asarray(a, dtype=np.int64).ravel() for a in arrays]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def departure_times(rx_ns: npt.ArrayLike, burst: int = 1) -> Timestamps:
    """Each departure's arrival time: the first of each run of ``burst`` arrivals."""
    require(isinstance(burst, int) and burst >= 1, f"burst {burst!r} is not allowed; use 1 or more")
    return np.asarray(rx_ns, dtype=np.int64)[::burst]


def ks_exponential(gaps: npt.ArrayLike, mean: float) -> float:
    """Kolmogorov-Smirnov statistic: sup |F_n(x) - (1 - exp(-x / mean))| over the gaps."""
    x = np.sort(np.asarray(gaps, dtype=np.float64))
    n = x.size
    require(n > 0 and mean > 0, "the KS statistic needs at least one gap and a positive mean")
    cdf = -np.expm1(-x / mean)
    upper = np.arange(1, n + 1) / n - cdf
    lower = cdf - np.arange(0, n) / n
    return max(float(upper.max()), float(lower.max()))


def ks_pvalue(statistic: float, n: int) -> float:
    """Asymptotic p-value of a one-sample KS statistic over n values (Kolmogorov's series, Stephens' n)."""
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * statistic
    if lam < 0.2:
        return 1.0
    total = sum((1 if k % 2 else -1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return min(1.0, max(0.0, 2 * total))


def stream_stats(
    rx_ns: npt.ArrayLike,
    *,
    rate_pps: float,
    burst: int = 1,
    pattern: str = "constant",
    seed: int | None = None,
    pacer: Any = None,
) -> dict[str, Any]:
    """The pacing figures of one stream from its merged receive timestamps (ns), JSON-ready.

    ``pacer`` (a PacerReport) adds ``pacer`` (its record), ``pacer_cpu_ns``, ``lateness_ns``
    (p50/p99/max of every departure's lateness against the intended schedule, which re-anchoring
    does not move: a stall shows in every departure after it, not hidden by coordinated omission),
    ``reanchors`` and ``reanchored_ns`` (the pacer's stalls and how far they moved the schedule).
    Figures that need two departures are None with fewer.
    """
    require(rate_pps > 0, f"rate_pps {rate_pps!r} is not allowed; use more than 0")
    ts = np.asarray(rx_ns, dtype=np.int64)
    starts = departure_times(ts, burst)
    gaps = np.diff(starts)
    ideal = burst * 1e9 / rate_pps
    span = int(starts[-1] - starts[0]) if starts.size >= 2 else 0
    achieved = (starts.size - 1) * burst * 1e9 / span if span > 0 else None
    out: dict[str, Any] = {
        "timestamps": "kernel-rx",
        "pattern": pattern,
        "seed": seed,
        "burst": burst,
        "datagrams": int(ts.size),
        "rate_target_pps": float(rate_pps),
        "rate_achieved_pps": achieved,
        "rate_error": achieved / rate_pps - 1 if achieved is not None else None,
        "gap_ideal_ns": ideal,
        "gap_dev_ns": percentiles(np.abs(gaps - ideal)),
        "stalls": int(np.count_nonzero(gaps >= STALL_GAPS * ideal)) if pattern == "constant" else None,
    }
    if pattern == "poisson":
        usable = gaps.size >= 2 and gaps.mean() > 0
        out["cv"] = float(gaps.std() / gaps.mean()) if usable else None
        out["ks"] = ks_exponential(gaps, ideal) if gaps.size else None
        out["ks_p"] = ks_pvalue(out["ks"], int(gaps.size)) if gaps.size else None
    if pacer is not None:
        out["pacer"] = pacer.as_dict()
        out["pacer_cpu_ns"] = pacer.cpu_ns
        out["lateness_ns"] = dict(pacer.schedule_lateness_ns or {})
        out["reanchors"] = pacer.stalls
        out["reanchored_ns"] = pacer.stalled_ns
    return out
