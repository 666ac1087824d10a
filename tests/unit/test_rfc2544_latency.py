"""One-way latency: each arrival mapped back to the departure that sent it, and the kernel's TX
stamps placed on the datagrams they belong to (pure, synthetic stamps)."""

from __future__ import annotations

import numpy as np

from rawpacer.bench.rfc2544_live import latencies, stamps_by_datagram


def test_each_arrival_is_matched_to_its_own_departure():
    ports, burst = 3, 2
    left = np.array([100, 200, 300], np.int64)  # 3 departures of 2 datagrams: datagrams 0..5
    # Datagram j reaches reader j % 3 and left with departure j // 2; the reader's k-th arrival
    # (by receive time) is datagram 3k + reader, whatever order the readers were read in.
    slot = np.array([2, 0, 1, 0, 1, 2], np.int32)
    rx = np.array([1_000_210, 150, 170, 390, 380, 410], np.int64)
    found = sorted(latencies(slot, rx, left, ports, burst).tolist())
    # r0: j0 (dep 0) 150-100, j3 (dep 1) 390-200; r1: j1 (dep 0) 170-100, j4 (dep 2) 380-300;
    # r2: j2 (dep 1) 410-200, j5 (dep 2) 1_000_210-300
    assert found == [50, 70, 80, 190, 210, 999_910]


def test_arrivals_beyond_the_recorded_departures_or_unstamped_are_left_out():
    found = latencies(np.array([0, 0], np.int32), np.array([10, 20], np.int64), np.array([5], np.int64), 1)
    assert found.tolist() == [5]
    unstamped = latencies(np.array([0, 0, 0], np.int32), np.array([10, 20, 30], np.int64), np.array([5, 0, 7]), 1)
    assert unstamped.tolist() == [5, 23]


def test_kernel_stamps_land_on_the_datagrams_of_the_stamped_departures():
    # Departures 0 and 3 of bursts of 4 were stamped, 14 datagrams in all: datagrams 0-3 and 12-13.
    keys = np.array([1, 0, 2, 3, 5, 4], np.int64)  # the error queue need not be in order
    times = 1000 + keys * 10
    found = stamps_by_datagram([0, 3], 4, 14, keys, times)
    assert found is not None
    assert found.tolist() == [1000, 1010, 1020, 1030] + [0] * 8 + [1040, 1050]


def test_stamps_that_do_not_match_the_stamped_sends_one_for_one_are_refused():
    ok = np.arange(4, dtype=np.int64)
    assert stamps_by_datagram([0], 4, 8, ok, ok) is not None
    assert stamps_by_datagram([0], 4, 8, ok[:3], ok[:3]) is None  # one stamp dropped (queue full)
    assert stamps_by_datagram([0], 4, 8, ok + 1, ok) is None  # ids that do not start at 0
    assert stamps_by_datagram([], 4, 8, ok[:0], ok[:0]) is None  # nothing stamped
