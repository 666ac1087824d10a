"""Departure schedules: constant ones exact at any index, Poisson ones seeded, reproducible, exponential."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from rawpacer.errors import UsageError
from rawpacer.pacing import ConstantSchedule, PaceSpec, PoissonSchedule, ks_exponential, link_bytes, make_schedule
from rawpacer.pacing.schedule import POISSON_CHUNK

LARGE = [0, 1, 2, 999, 10**6 + 7, 10**9 + 3, 10**12 + 11, 3 * 10**14]


@pytest.mark.parametrize(("rate", "burst"), [(10_000, 1), (3, 1), (7, 5), (1_500_000, 1), (123_456.789, 3), (1, 1024)])
def test_constant_offsets_are_exact_at_any_index(rate, burst):
    schedule = ConstantSchedule(rate, burst)
    period = Fraction(burst * 10**9) / Fraction(repr(rate))  # the rate as the decimal it is written as
    for i in LARGE:
        assert schedule.offset_ns(i) == math.floor(i * period), f"departure {i} is not floor(i * period)"


@pytest.mark.parametrize("start", [0, 17, 10**9 + 1, 10**12])
def test_constant_bulk_offsets_equal_one_at_a_time(start):
    schedule = ConstantSchedule(7_777, 3)
    bulk = schedule.offsets(start, 500)
    assert bulk.dtype == np.int64
    assert bulk.tolist() == [schedule.offset_ns(i) for i in range(start, start + 500)]


def test_bit_rate_schedule_is_exact():
    schedule = make_schedule(PaceSpec.parse("200Mbit"), link_bytes(1500))
    assert schedule.period_ns == 8 * 1542 * 10**9 // (200 * 10**6)
    assert schedule.offset_ns(10**9) == 10**9 * schedule.period_ns


def test_departures_round_up_to_whole_bursts():
    schedule = ConstantSchedule(1000, 8)
    assert [schedule.departures(n) for n in (0, 1, 8, 9, 16)] == [0, 1, 1, 2, 2]
    assert schedule.gap_ns == 8_000_000


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (0.5, 1), (1e9, 1), (1000, 0), (1000, 1025), (1000, True)])
def test_schedule_refuses_bad_rates_and_bursts(rate, burst):
    with pytest.raises(UsageError):
        ConstantSchedule(rate, burst)


def test_poisson_is_reproducible_from_its_seed():
    a = PoissonSchedule(10_000, seed=1234)
    b = PoissonSchedule(10_000, seed=1234)
    c = PoissonSchedule(10_000, seed=1235)
    assert np.array_equal(a.offsets(0, 3 * POISSON_CHUNK), b.offsets(0, 3 * POISSON_CHUNK))
    assert not np.array_equal(a.offsets(0, 100), c.offsets(0, 100))
    assert a.seed == 1234 and ConstantSchedule(10).seed is None


def test_poisson_random_access_replays_the_same_offsets():
    schedule = PoissonSchedule(1000, 2, seed=9)
    bulk = schedule.offsets(0, 2 * POISSON_CHUNK + 10)
    assert bulk[0] == 0 and np.all(np.diff(bulk) >= 0)
    picks = [5, POISSON_CHUNK, POISSON_CHUNK + 1, 2 * POISSON_CHUNK + 9, 3, 0, POISSON_CHUNK - 1]
    assert [schedule.offset_ns(i) for i in picks] == [int(bulk[i]) for i in picks]
    assert np.array_equal(schedule.offsets(POISSON_CHUNK - 5, 20), bulk[POISSON_CHUNK - 5 : POISSON_CHUNK + 15])


def test_poisson_gaps_are_exponential_with_mean_burst_over_rate():
    rate, burst, n = 50_000, 4, 200_000
    schedule = make_schedule(PaceSpec.parse(str(rate), burst=burst, pattern="poisson", seed=2024))
    gaps = np.diff(schedule.offsets(0, n + 1))
    mean = burst * 1e9 / rate
    assert schedule.gap_ns == mean
    # Standard error of the mean and of the std are mean / sqrt(n) = 0.22 % here: 1 % is > 4 sigma.
    assert gaps.mean() == pytest.approx(mean, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.01)
    assert ks_exponential(gaps, mean) < 1.63 / np.sqrt(n), "KS rejects the exponential at 1 %"
    assert np.median(gaps) == pytest.approx(mean * np.log(2), rel=0.01)


def test_poisson_needs_a_valid_seed():
    with pytest.raises(UsageError, match="seed"):
        PoissonSchedule(1000, seed=-1)
