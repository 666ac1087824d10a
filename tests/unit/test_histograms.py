"""HdrHistograms of op times, gap deviations and latencies: encode -> decode keeps the percentiles within
HdrHistogram's precision, and the interval logs load with the hdrhistogram package's own reader."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from hypothesis import given, settings
from hypothesis import strategies as st

from rawpacer.bench import confidence, histograms
from rawpacer.pacing.stats import QUANTILES

ONE_BUCKET = 2.0 * histograms.PRECISION
"""A decoded value is within one HDR bucket of the exact one: at most 2 x 10^-3 relative (3 digits)."""


def exact(values: np.ndarray, percent: float) -> float:
    """The order statistic rawpacer reports (pacing.stats.percentiles' method)."""
    return float(np.quantile(values, percent / 100, method="inverted_cdf"))


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).exponential(50_000, 100_000).astype(np.int64),  # latencies: a long tail
        np.random.default_rng(2).normal(500_000, 20_000, 5_000).astype(np.int64),  # op times near 0.5 ms
        np.arange(1, 10_001, dtype=np.int64) * 997,  # spread over 4 decades
    ],
)
def test_encode_decode_keeps_every_percentile_within_hdr_precision(values):
    found = histograms.summary(histograms.decode(histograms.encode(values)))
    assert found["count"] == values.size
    for name, percent in histograms.PERCENTILES.items():
        assert found[name] == pytest.approx(exact(values, percent), rel=ONE_BUCKET, abs=1), name


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=300))
def test_round_trip_of_any_values(values):
    data = np.asarray(values, dtype=np.int64)
    found = histograms.summary(histograms.decode(histograms.encode(data)))
    assert found["count"] == data.size
    for name in ("p50", "p99", "max"):
        assert found[name] == pytest.approx(exact(data, histograms.PERCENTILES[name]), rel=ONE_BUCKET, abs=1)


def test_the_json_percentiles_are_among_the_printed_ones():
    assert set(QUANTILES) <= set(histograms.PERCENTILES)
    assert histograms.LABELS == ("p50", "p90", "p99", "p99.9", "p99.99", "max")


def test_out_of_range_values_are_clipped_not_refused():
    found = histograms.summary(histograms.decode(histograms.encode([-5, 3, histograms.HIGHEST_NS * 10])))
    assert found["count"] == 3
    assert found["p50"] == pytest.approx(3, abs=1)
    assert found["max"] == pytest.approx(histograms.HIGHEST_NS, rel=ONE_BUCKET)


def test_empty_distribution_has_a_count_of_zero_and_no_percentiles():
    found = histograms.summary(histograms.decode(histograms.encode([])))
    assert found["count"] == 0 and found["p99"] is None


def test_merge_of_passes_equals_the_histogram_of_all_values():
    rng = np.random.default_rng(3)
    passes = [rng.integers(1_000, 2_000_000, 2_000) for _ in range(3)]
    merged = histograms.summary(histograms.merge(histograms.encode(p) for p in passes))
    assert merged == histograms.summary(histograms.histogram(np.concatenate(passes)))


def test_hlog_loads_with_the_hdrhistogram_package(tmp_path):
    rng = np.random.default_rng(4)
    passes = [rng.integers(10_000, 900_000, n) for n in (500, 800)]
    intervals = histograms.consecutive([histograms.encode(p) for p in passes], [1.5, 2.0])
    assert [(i.start_s, i.length_s) for i in intervals] == [(0.0, 1.5), (1.5, 2.0)]
    path = tmp_path / "w.hlog"
    path.write_text(histograms.hlog_text(intervals, "rawpacer test"))
    reader = HistogramLogReader(str(path), HdrHistogram(histograms.LOWEST_NS, histograms.HIGHEST_NS, 3))
    loaded = [reader.get_next_interval_histogram() for _ in passes]
    assert reader.get_next_interval_histogram() is None
    for values, found in zip(passes, loaded):
        assert found.get_total_count() == values.size
        assert found.get_value_at_percentile(99) == pytest.approx(exact(values, 99), rel=ONE_BUCKET)
    lines = path.read_text().splitlines()
    assert lines[0] == "#rawpacer test" and lines[1] == "#[Histogram log format version 1.2]"
    assert lines[5].startswith("1.500000,2.000000,")  # the second pass: start, length (s), max (ms), histogram


@pytest.mark.parametrize("module", [histograms, confidence])
def test_module_examples_run(module):
    assert doctest.testmod(module).failed == 0
