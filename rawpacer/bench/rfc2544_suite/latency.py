"""Latency (RFC 2544 26.2): per-datagram one-way latency at the throughput rate, pooled over trials.

RFC 2544 times one tagged frame per trial and averages 20 trials; rawpacer times every datagram
(kernel receive timestamp minus departure timestamp), so it reports the distribution instead, with
the tail points every latency-like figure in rawpacer reports (``bench.stats``): p50, p99, p99.9, max.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rawpacer.bench import histograms, stats


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles (ns) of the latencies pooled from one or more trials, their count, a CDF to plot,
    the departure-time source (None when the trials disagreed or did not say), and the whole
    distribution as an HdrHistogram (``bench.histograms``)."""

    percentiles: dict[str, float]
    count: int
    source: str | None
    cdf: list[float] = field(default_factory=list)
    hdr: str | None = None

    def to_dict(self) -> dict[str, float]:
        """The JSON ``latency_ns`` object: p50, p99, p999, max."""
        return dict(self.percentiles)


def pool(samples: Iterable[Sequence[int] | np.ndarray], sources: Iterable[str | None]) -> LatencyStats | None:
    """Merge per-trial latencies (ns) and sources into one summary; None when no trial reported any."""
    values = np.concatenate([np.asarray(trial, dtype=np.int64) for trial in samples] or [np.zeros(0, np.int64)])
    if values.size == 0:
        return None
    found = stats.percentiles(values)
    named = {s for s in sources if s is not None}
    source = named.pop() if len(named) == 1 else None
    return LatencyStats(found, int(values.size), source, stats.cdf(values), histograms.encode(values))
