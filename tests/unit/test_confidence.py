"""Bootstrap 95 % intervals: the arithmetic on samples whose answer is known, and compare's use of them."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from rich.console import Console

from rawpacer.bench import confidence
from rawpacer.bench.config import make_config
from rawpacer.bench.result import Report, Sample, WriterResult
from rawpacer.errors import UsageError
from rawpacer.readers.counts import Counts
from rawpacer.report.jsonout import to_json
from rawpacer.report.table import print_report


def test_identical_samples_have_no_spread():
    found = confidence.median_ci([5.0, 5.0, 5.0, 5.0])
    assert (found.estimate, found.low, found.high) == (5.0, 5.0, 5.0)


def test_three_samples_interval_is_their_range():
    # resampling [1, 2, 3]: median 1 or 3 each with probability 7/27 (26 %), far above 2.5 %
    found = confidence.median_ci([1.0, 2.0, 3.0])
    assert (found.estimate, found.low, found.high) == (2.0, 1.0, 3.0)


def test_seeded_and_reproducible_but_the_seed_matters():
    values = np.random.default_rng(0).normal(100, 10, 40)
    assert confidence.median_ci(values) == confidence.median_ci(values)
    assert confidence.median_ci(values, seed=1) != confidence.median_ci(values, seed=2)


def test_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    covered = 0
    for seed in range(200):
        sample = rng.normal(100.0, 10.0, 25)
        found = confidence.median_ci(sample, resamples=500, seed=seed)
        covered += found.low <= 100.0 <= found.high
    assert 0.88 <= covered / 200 <= 0.995


def test_ratio_of_medians_and_its_interval():
    found = confidence.ratio_ci([200.0, 220.0, 180.0, 200.0], [100.0, 100.0, 100.0])
    assert found.estimate == 2.0
    assert found.low == pytest.approx(1.8) and found.high == pytest.approx(2.2)
    with pytest.raises(UsageError, match="denominator"):
        confidence.ratio_ci([1.0], [0.0])


def test_bad_samples_are_refused():
    with pytest.raises(UsageError):
        confidence.median_ci([])
    with pytest.raises(UsageError):
        confidence.median_ci([1.0, float("nan")])


def test_ci_is_automatic_from_three_passes_and_refused_below():
    assert not make_config(writers="udp-sendto", count=2).ci
    assert make_config(writers="udp-sendto", count=3).ci
    assert make_config(writers="udp-sendto", count=3, ci=True).params()["ci"] is True
    with pytest.raises(UsageError, match="--ci with count 1"):
        make_config(writers="udp-sendto", ci=True)


def passes(*ns_per_op: float) -> list[Sample]:
    return [
        Sample(ops=10, elapsed_ns=int(ns * 10), sent=100, counts=Counts(delivered=100, intact=100), payload_bytes=1)
        for ns in ns_per_op
    ]


def test_compare_prints_and_writes_the_intervals():
    report = Report({"cpu": "c", "cores": 2}, {"mode": "fanout", "count": 3, "ci": True})
    report.results = [
        WriterResult("udp-sendto", 100, 1500, 1500, samples=passes(1000, 1100, 900)),
        WriterResult("xdp", 100, 1500, 1500, samples=passes(500, 520, 480)),
    ]
    row = json.loads(to_json(report))["results"][1]
    assert row["ns_per_op_ci"]["estimate"] == 500.0
    assert (row["ns_per_op_ci"]["low"], row["ns_per_op_ci"]["high"]) == (480.0, 520.0)
    ratio = row["speedup_vs_udp_sendto_ci"]
    assert ratio["estimate"] == 2.0 and ratio["low"] < 2.0 < ratio["high"]
    assert row["speedup_vs_go_baseline_ci"] is None
    out = io.StringIO()
    print_report(report, Console(file=out, width=250))
    text = out.getvalue()
    assert "ns/op 95% CI" in text and "[480–520]" in text and "2.00× [" in text
