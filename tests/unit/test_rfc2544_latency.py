"""One-way latency: each arrival mapped back to the departure that sent it (pure, synthetic stamps)."""

from __future__ import annotations

import numpy as np

from rawpacer.bench.rfc2544_live import latencies


def test_each_arrival_is_matched_to_its_own_departure():
    ports, burst, offset = 3, 2, 1_000_000
    left = np.array([100, 200, 300], np.int64)  # 3 departures of 2 datagrams: datagrams 0..5
    # Datagram j reaches reader j % 3 and left with departure j // 2; the reader's k-th arrival
    # (by receive time) is datagram 3k + reader, whatever order the readers were read in.
    slot = np.array([2, 0, 1, 0, 1, 2], np.int32)
    rx = np.array([2_000_210, 1_000_150, 1_000_170, 1_000_390, 1_000_380, 1_000_410], np.int64)
    found = sorted(latencies(slot, rx, left, ports, offset, burst).tolist())
    # r0: j0 (dep 0) 150-100, j3 (dep 1) 390-200; r1: j1 (dep 0) 170-100, j4 (dep 2) 380-300;
    # r2: j2 (dep 1) 410-200, j5 (dep 2) 1_000_210-300
    assert found == [50, 70, 80, 190, 210, 999_910]


def test_arrivals_beyond_the_recorded_departures_are_left_out():
    found = latencies(np.array([0, 0], np.int32), np.array([10, 20], np.int64), np.array([5], np.int64), 1, 0)
    assert found.tolist() == [5]
