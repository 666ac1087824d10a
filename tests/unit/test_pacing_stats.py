"""Pacing statistics on synthetic receive timestamps: merge, rate, gap deviation, bursts, stalls, KS."""

from __future__ import annotations

import json
import math
import socket
import struct

import numpy as np
import pytest

from rawpacer.kernel.timestamping import SCM_TIMESTAMPNS, timestamp_ns
from rawpacer.pacing import (
    ConstantSchedule,
    Pacer,
    PoissonSchedule,
    departure_times,
    ks_exponential,
    ks_pvalue,
    merge_timestamps,
    pacing_qdiscs,
    percentiles,
    stream_stats,
)

T0 = 1_700_000_000 * 10**9  # receive timestamps are CLOCK_REALTIME


def grid(rate: float, n: int) -> np.ndarray:
    return T0 + np.floor(np.arange(n) * 1e9 / rate).astype(np.int64)


def order_statistic(values, q):
    ordered = np.sort(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def test_percentiles_are_observed_order_statistics():
    values = np.random.default_rng(1).integers(0, 10**6, 12345)
    found = percentiles(values)
    for key, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)):
        assert found[key] == order_statistic(values, q)
    assert percentiles([]) == {"p50": None, "p99": None, "p999": None, "max": None}


def test_merge_puts_every_readers_arrivals_in_order():
    arrivals = grid(10_000, 3000)
    readers = [arrivals[k::3] for k in range(3)]  # a fan-out's datagrams spread over three readers
    merged = merge_timestamps(readers[::-1])
    assert merged.dtype == np.int64 and np.array_equal(merged, arrivals)
    assert merge_timestamps([]).size == 0


def test_perfect_spacing_has_no_deviation():
    stats = stream_stats(grid(10_000, 20_001), rate_pps=10_000)
    assert stats["rate_achieved_pps"] == pytest.approx(10_000, rel=1e-12)
    assert stats["rate_error"] == pytest.approx(0, abs=1e-12)
    assert stats["gap_ideal_ns"] == 100_000
    assert stats["gap_dev_ns"] == {"p50": 0, "p99": 0, "p999": 0, "max": 0}
    assert (stats["stalls"], stats["timestamps"], stats["burst"], stats["datagrams"]) == (0, "kernel-rx", 1, 20_001)


def test_floored_grid_of_an_odd_rate_deviates_under_a_nanosecond():
    stats = stream_stats(grid(3_000, 5000), rate_pps=3_000)
    assert stats["gap_dev_ns"]["max"] < 1
    assert abs(stats["rate_error"]) < 1e-9


def test_rate_is_n_minus_one_over_the_span():
    stamps = np.array([0, 90, 260, 300, 410], dtype=np.int64) + T0
    stats = stream_stats(stamps, rate_pps=1e7)
    assert stats["rate_achieved_pps"] == pytest.approx(4 / 410e-9)
    assert stats["rate_error"] == pytest.approx(4 / 410e-9 / 1e7 - 1)


def test_bursts_are_measured_between_their_first_arrivals():
    burst, rate = 4, 40_000  # 10k departures/s, 4 datagrams each, 300 ns apart inside a burst
    starts = grid(rate / burst, 2000)
    stamps = (starts[:, None] + np.arange(burst) * 300).ravel()
    assert np.array_equal(departure_times(stamps, burst), starts)
    stats = stream_stats(stamps, rate_pps=rate, burst=burst)
    assert stats["gap_ideal_ns"] == 100_000
    assert stats["gap_dev_ns"]["max"] == 0
    assert stats["rate_achieved_pps"] == pytest.approx(rate, rel=1e-12)
    per_datagram = stream_stats(stamps, rate_pps=rate)
    assert per_datagram["gap_dev_ns"]["p50"] > 20_000, "without grouping, a burst looks like jitter"


def test_jitter_shows_in_the_tail_and_a_missed_slot_is_a_stall():
    rate, n = 10_000, 1001
    stamps = grid(rate, n)
    stamps[500] += 5_000  # one departure 5 µs late: gaps 105 µs then 95 µs
    stamps[800:] += 150_000  # a stall: 250 µs between 799 and 800, spacing kept afterwards
    stats = stream_stats(stamps, rate_pps=rate)
    deviations = np.sort(np.abs(np.diff(stamps) - 100_000))
    assert deviations.tolist()[-3:] == [5_000, 5_000, 150_000]
    assert stats["gap_dev_ns"] == {
        "p50": 0,
        "p99": order_statistic(deviations, 0.99),
        "p999": order_statistic(deviations, 0.999),
        "max": 150_000,
    }
    assert stats["stalls"] == 1
    assert stats["rate_achieved_pps"] == pytest.approx(1000 / (1000 * 100e-6 + 150e-6))


def test_too_few_arrivals_give_none_not_an_error():
    for stamps in ([], [T0]):
        stats = stream_stats(stamps, rate_pps=1000)
        assert stats["rate_achieved_pps"] is None and stats["rate_error"] is None
        assert stats["gap_dev_ns"]["p99"] is None


def test_ks_statistic_known_values():
    mean = 1000.0
    assert ks_exponential([mean * math.log(2)], mean) == pytest.approx(0.5)
    quartiles = [mean * math.log(4 / 3), mean * math.log(2), mean * math.log(4)]
    assert ks_exponential(quartiles, mean) == pytest.approx(0.25)
    assert ks_exponential(np.full(100, 1e9), mean) == pytest.approx(1.0)


def test_ks_pvalue_matches_kolmogorovs_distribution():
    n = 10_000
    critical = 1.3581 / (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n))  # P(K > 1.3581) = 0.05
    assert ks_pvalue(critical, n) == pytest.approx(0.05, abs=5e-4)
    assert ks_pvalue(0.0, n) == 1.0
    assert ks_pvalue(0.5, n) < 1e-12


def test_poisson_stream_stats():
    rate, n = 10_000, 50_000
    schedule = PoissonSchedule(rate, seed=77)
    stats = stream_stats(T0 + schedule.offsets(0, n), rate_pps=rate, pattern="poisson", seed=77)
    assert stats["seed"] == 77 and stats["pattern"] == "poisson" and stats["stalls"] is None
    assert stats["cv"] == pytest.approx(1.0, abs=0.03)
    assert stats["ks"] < 1.63 / math.sqrt(n - 1) and stats["ks_p"] > 0.01
    even = stream_stats(grid(rate, n), rate_pps=rate, pattern="poisson")
    assert even["cv"] == 0 and even["ks"] > 0.3 and even["ks_p"] < 1e-12, "even gaps are not exponential"


def test_stats_carry_the_pacer_record_and_serialise():
    class Clock:
        t = 0

        def now(self):
            return self.t

        def sleep_until(self, deadline):
            self.t = max(self.t, deadline)
            return self.t

        spin_until = sleep_until

    clock = Clock()
    pacer = Pacer(ConstantSchedule(1000), spin="full", clock=clock)
    for i in range(5):
        if i == 3:
            clock.t += 30_000_000  # a stall before departure 3: 29 ms late, re-anchored
        pacer.wait(i)
    report = pacer.report()
    stats = stream_stats(grid(1000, 5), rate_pps=1000, pacer=report)
    assert stats["pacer"] == report.as_dict() and stats["pacer"]["departures"] == 5
    assert stats["pacer_cpu_ns"] == report.cpu_ns == 3_100_000, "this pacer spins through every wait and the lead"
    assert (stats["reanchors"], stats["reanchored_ns"]) == (1, 29_000_000)
    assert stats["lateness_ns"] == {"p50": 0, "p99": 29_000_000, "max": 29_000_000}, "against the intended schedule"
    assert stats["pacer"]["lateness_ns"]["p99"] == 29_000_000 and stats["pacer"]["spin"] == "full"
    assert json.loads(json.dumps(stats)) == stats


def test_receive_timestamp_from_ancillary_data():
    data = struct.pack("@qq", 1_700_000_123, 456_789_012)
    assert timestamp_ns([(socket.SOL_SOCKET, SCM_TIMESTAMPNS, data)]) == 1_700_000_123_456_789_012
    assert timestamp_ns([(socket.SOL_SOCKET, SCM_TIMESTAMPNS + 1, data)]) is None
    assert timestamp_ns([]) is None


@pytest.mark.parametrize(
    ("config", "fq", "etf"),
    [
        ("CONFIG_NET_SCH_FQ=y\nCONFIG_NET_SCH_ETF=m\n", "built-in", "module"),
        (
            "# CONFIG_NET_SCH_FQ is not set\n# CONFIG_NET_SCH_ETF is not set\nCONFIG_NET_SCH_FQ_CODEL=y\n",
            "absent",
            "absent",
        ),
        ("", "absent", "absent"),
    ],
)
def test_pacing_qdiscs_from_the_kernel_config(config, fq, etf):
    assert pacing_qdiscs(config) == {"fq": fq, "etf": etf}


def test_pacing_qdiscs_without_a_config_look_for_modules(tmp_path, monkeypatch):
    monkeypatch.setattr("rawpacer.pacing.txtime._config_text", lambda: None)
    sched = tmp_path / "kernel" / "net" / "sched"
    sched.mkdir(parents=True)
    (sched / "sch_fq.ko.xz").write_bytes(b"")
    assert pacing_qdiscs(modules_dir=str(tmp_path)) == {"fq": "module", "etf": "unknown"}
    assert set(pacing_qdiscs().values()) <= {"built-in", "module", "absent", "unknown"}
