"""Size mixes: the simple IMIX and custom mixes parse, the interleaved order keeps every window near its
proportions and repeats, seeded random orders repeat and follow the weights, and bad mixes are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawpacer.errors import UsageError
from rawpacer.traffic.sizes import MAX_FRAME_SIZE, SizeMix, parse_sizes


def test_imix_is_the_simple_imix():
    mix = parse_sizes("imix")
    assert (mix.sizes, mix.weights, str(mix)) == ((64, 594, 1518), (7, 4, 1), "64:7,594:4,1518:1")
    assert parse_sizes("IMIX") == mix == parse_sizes("64:7, 594:4, 1518:1")


def test_one_size_and_unweighted_lists():
    assert parse_sizes("1518") == SizeMix((1518,), (1,))
    assert parse_sizes("64,1518").sequence(4).tolist() == [64, 1518, 64, 1518]


def test_imix_order_interleaves_and_counts_exactly():
    mix = parse_sizes("imix")
    sizes = mix.sequence(1200)
    assert sizes.tolist()[:12] == [64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 594, 64]
    assert mix.counts(1200) == {64: 700, 594: 400, 1518: 100}
    assert np.array_equal(sizes, mix.sequence(1200))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=5), st.integers(1, 200))
def test_every_window_keeps_its_proportions(weights, window):
    """Smooth weighted round robin: in any run of frames each size's count is within 2 of its share."""
    mix = SizeMix(tuple(64 + 10 * i for i in range(len(weights))), tuple(weights))
    sizes = mix.sequence(3 * mix.period + window)
    for size, weight in zip(mix.sizes, mix.weights):
        hits = np.concatenate([[0], np.cumsum(sizes == size)])
        in_windows = hits[window:] - hits[:-window]
        share = window * weight / mix.period
        assert np.all(np.abs(in_windows - share) < 2), (size, weight, window)


def test_a_seed_draws_in_proportion_and_repeats():
    mix = parse_sizes("imix")
    drawn = mix.sequence(120_000, seed=7)
    assert np.array_equal(drawn, mix.sequence(120_000, seed=7))
    assert not np.array_equal(drawn, mix.sequence(120_000, seed=8))
    counts = mix.counts(120_000, seed=7)
    assert sum(counts.values()) == 120_000
    for size, weight in zip(mix.sizes, mix.weights):
        assert abs(counts[size] / 120_000 - weight / 12) < 0.01


def test_zero_frames():
    assert parse_sizes("imix").sequence(0).tolist() == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "size mix '' is empty"),
        ("63", "frame size 63 is out of range 64-"),
        (str(MAX_FRAME_SIZE + 1), f"frame size {MAX_FRAME_SIZE + 1} is out of range"),
        ("64:0", "size 64: weight 0 is out of range 1-"),
        ("64:x", "size 64: weight 'x' is not an integer"),
        ("big", "frame size 'big' is not an integer"),
        ("64:1,64:2", "frame size 64 is given twice"),
        ("64,,128", "frame size '' is not an integer"),
    ],
)
def test_bad_mixes_are_one_line(text, message):
    with pytest.raises(UsageError, match=message):
        parse_sizes(text)


def test_bad_counts_and_seeds():
    mix = parse_sizes("imix")
    with pytest.raises(UsageError, match="frame count -1"):
        mix.sequence(-1)
    with pytest.raises(UsageError, match="seed -1 is out of range"):
        mix.sequence(3, seed=-1)
