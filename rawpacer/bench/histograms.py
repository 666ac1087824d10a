"""Whole distributions as HdrHistograms, for re-analysis: op times, gap deviations and latencies (ns).

A figure like p99 is one point; a reviewer who wants another point, or to merge runs, needs the
distribution. rawpacer keeps it in HdrHistogram's own form, the compressed base64 string of the PyPI
``hdrhistogram`` package (``hdrh``), which every HdrHistogram implementation (Java, C, Go, Rust,
HistogramLogAnalyzer) decodes. Values are recorded at ``SIGNIFICANT_DIGITS`` digits: any value a
histogram gives back is within 0.1 % of one that was recorded. Pure: arrays of ns in, text out.

>>> encoded = encode([1_000, 2_000, 3_000, 1_000_000])
>>> summary(decode(encoded))["count"], summary(decode(encoded))["p50"], summary(decode(encoded))["max"]
(4, 2000, 1000447)
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogWriter

LOWEST_NS = 1
"""The smallest value told apart from 0 (1 ns: every figure is an integer count of ns)."""

HIGHEST_NS = 3_600 * 10**9
"""The largest value kept (an hour, the longest run); larger values are recorded as this."""

SIGNIFICANT_DIGITS = 3
"""Decimal digits every value keeps: a relative error of at most 10^-3 (HdrHistogram's usual)."""

PRECISION = 10.0**-SIGNIFICANT_DIGITS
"""The relative error a decoded percentile may have against the exact order statistic."""

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9, "p9999": 99.99, "max": 100.0}
"""The points a distribution is printed at (to p99.99), by their JSON names."""

LABELS = tuple("max" if at == 100.0 else f"p{at:g}" for at in PERCENTILES.values())
"""How tables head the PERCENTILES: p50, p90, p99, p99.9, p99.99, max."""

MS_PER_NS = 1e6
"""The hlog's Interval_Max column is in ms: the ns maximum divided by this (the format's convention)."""


Values = Sequence[int] | Sequence[float] | npt.NDArray[np.int64] | npt.NDArray[np.float64]


def histogram(values_ns: Values) -> HdrHistogram:
    """An HdrHistogram of ``values_ns`` (negatives recorded as 0, values over an hour as an hour)."""
    found = HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
    data = np.clip(np.rint(np.asarray(values_ns, dtype=np.float64)), 0, HIGHEST_NS).astype(np.int64)
    values, counts = np.unique(data, return_counts=True)
    for value, count in zip(values.tolist(), counts.tolist()):
        found.record_value(value, count)
    return found


def encode(values_ns: Values) -> str:
    """The compressed base64 HdrHistogram of ``values_ns``: what the JSON keeps (``*_hdr`` keys)."""
    return str(histogram(values_ns).encode().decode("ascii"))


def decode(encoded: str) -> HdrHistogram:
    """The HdrHistogram an ``encode`` string holds."""
    return HdrHistogram.decode(encoded.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """One HdrHistogram of several encoded ones (a writer's passes, a search's trials)."""
    found = HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
    for text in encoded:
        found.decode_and_add(text.encode("ascii"))
    return found


def summary(found: HdrHistogram) -> dict[str, Any]:
    """``count`` and the PERCENTILES (ns) of a histogram; each percentile None when it is empty."""
    count = int(found.get_total_count())
    if count == 0:
        return dict(dict.fromkeys(PERCENTILES), count=0)
    points = {name: int(found.get_value_at_percentile(at)) for name, at in PERCENTILES.items()}
    points["max"] = int(found.get_max_value())
    return dict(points, count=count)


def percentiles_of(values_ns: Values) -> dict[str, Any]:
    """``summary`` of the values' histogram: the PERCENTILES and the count behind them."""
    return summary(histogram(values_ns))


@dataclass(frozen=True)
class Interval:
    """One line of an hlog: an encoded histogram, when it started (s after the log's base) and how long it was."""

    encoded: str
    start_s: float
    length_s: float


def hlog_text(intervals: Sequence[Interval], comment: str) -> str:
    """An HdrHistogram interval log (format 1.2, as ``hdrh.log.HistogramLogWriter`` writes it): a comment,
    the legend and one line per interval. HistogramLogAnalyzer and ``hdrh.log.HistogramLogReader`` load it."""
    out = io.StringIO()
    log = HistogramLogWriter(out)
    log.output_comment(comment)
    log.output_log_format_version()
    log.output_base_time(0)
    log.output_legend()
    for interval in intervals:
        found = decode(interval.encoded)
        # hdrh treats a start of 0 as "use the histogram's own stamp": stamp it with the same values
        found.set_start_time_stamp(int(interval.start_s * 1000))
        found.set_end_time_stamp(int((interval.start_s + interval.length_s) * 1000))
        log.output_interval_histogram(
            found, interval.start_s, interval.start_s + interval.length_s, max_value_unit_ratio=MS_PER_NS
        )
    return out.getvalue()


def consecutive(encoded: Sequence[str], lengths_s: Sequence[float]) -> list[Interval]:
    """Intervals one after another from 0 s, each as long as given (a writer's passes, a search's trials)."""
    starts = [0.0, *np.cumsum(lengths_s).tolist()]
    return [Interval(text, float(start), float(length)) for text, start, length in zip(encoded, starts, lengths_s)]
