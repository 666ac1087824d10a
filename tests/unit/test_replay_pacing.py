"""A replay's pacing figures streamed: exact while the pairs fit, close (HdrHistogram) past them,
the rate and end figures exact either way, and a bounded subsample for plots."""

import numpy as np
import pytest

from rawpacer.bench.replaypacing import PacingStream
from rawpacer.pacing.fed import schedule_stats


def pairs(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    due = np.arange(n, dtype=np.int64) * 10_000
    rx = 5_000_000 + due + rng.integers(0, 3_000, n)
    return np.sort(rx), due


@pytest.mark.parametrize("exact", [10**9, 1000])
def test_streamed_figures_match_schedule_stats(exact):
    rx, due = pairs(50_000)
    stream = PacingStream(exact=exact, points=512)
    for lo, hi in [(0, 1), (1, 7000), (7000, 7000), (7000, 50_000)]:
        stream.add(rx[lo:hi], due[lo:hi])
    whole, got = schedule_stats(rx, due), stream.stats()
    for key in ("datagrams", "rate_target_pps", "rate_achieved_pps", "rate_error", "end_vs_schedule_ns"):
        assert got[key] == pytest.approx(whole[key], rel=1e-12)
    if exact > 50_000:
        assert got["gap_dev_ns"] == whole["gap_dev_ns"] and got["gap_dev_from"] == "every gap"
    else:
        assert got["gap_dev_from"] == "hdrhistogram" and got["gap_dev_ns"]["max"] == whole["gap_dev_ns"]["max"]
        for key in ("p50", "p99", "p999"):
            assert got["gap_dev_ns"][key] == pytest.approx(whole["gap_dev_ns"][key], rel=2e-3)


def test_the_timeline_is_a_bounded_systematic_subsample():
    rx, due = pairs(100_000)
    stream = PacingStream(points=1000)
    for lo in range(0, 100_000, 3_333):
        stream.add(rx[lo : lo + 3_333], due[lo : lo + 3_333])
    kept_rx, kept_due = stream.timeline()
    assert 500 <= kept_rx.size <= 1000
    assert kept_rx.tolist() == rx[:: stream.stride].tolist() and kept_due.tolist() == due[:: stream.stride].tolist()
