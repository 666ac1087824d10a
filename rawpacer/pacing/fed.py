"""A schedule whose offsets are handed to it a chunk at a time: a replay's, computed from a
capture's timestamps or its frames' sizes as the file streams, so a loop of any length holds one
chunk of offsets, never the whole file's.

Departure i is due at ``anchor + offset(i)`` like any schedule's, every offset measured from the
one anchor, so a replay of any length (or number of loops) does not drift. ``feed(start,
offsets)`` replaces the chunk; ``offsets(i, n)`` returns what is known from i on (at most n, at
least one), which is how the pacer's C core reads a schedule a window at a time.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from rawpacer.errors import RawpacerError
from rawpacer.pacing.schedule import Offsets, Schedule
from rawpacer.pacing.stats import percentiles


class FedSchedule(Schedule):
    """Offsets fed in chunks (one frame per departure, burst 1); ``gap_ns`` is the mean gap so far."""

    pattern = "replay"

    def __init__(self) -> None:
        """No rate: the offsets are given, not computed."""
        self.rate_pps = 0.0
        self.burst = 1
        self.period_ns = Fraction(1)
        self._start = 0
        self._offsets: Offsets = np.zeros(0, np.int64)

    def feed(self, start: int, offsets: Offsets) -> None:
        """Departures ``start ..`` are due at ``offsets`` (int64 ns from the anchor, not decreasing)."""
        self._start = start
        self._offsets = np.ascontiguousarray(offsets, dtype=np.int64)

    def _index(self, i: int) -> int:
        k = i - self._start
        if not 0 <= k < self._offsets.size:
            raise RawpacerError(f"replay schedule: departure {i} is outside the chunk fed ({self._start}..)")
        return k

    def offset_ns(self, i: int) -> int:
        return int(self._offsets[self._index(i)])

    def offsets(self, start: int, count: int) -> Offsets:
        k = self._index(start)
        return self._offsets[k : k + max(1, count)]


def schedule_stats(rx_ns: npt.ArrayLike, due_ns: npt.ArrayLike) -> dict[str, Any]:
    """How a replay kept its schedule, from kernel receive timestamps: ``rx_ns`` in arrival order and
    each datagram's scheduled offset ``due_ns``. The rate achieved against the schedule's, each gap's
    deviation from its scheduled gap (p50, p99, p99.9, max), and how far the last arrival ended from
    where the schedule put it (drift: + late, - early), JSON-ready; None figures with fewer than two."""
    rx, due = np.asarray(rx_ns, np.int64), np.asarray(due_ns, np.int64)
    span = int(rx[-1] - rx[0]) if rx.size >= 2 else 0
    planned = int(due[-1] - due[0]) if due.size >= 2 else 0
    return {
        "timestamps": "kernel-rx",
        "datagrams": int(rx.size),
        "rate_target_pps": (rx.size - 1) * 1e9 / planned if planned > 0 else None,
        "rate_achieved_pps": (rx.size - 1) * 1e9 / span if span > 0 else None,
        "rate_error": planned / span - 1 if span > 0 and planned > 0 else None,
        "gap_dev_ns": percentiles(np.abs(np.diff(rx) - np.diff(due))) if planned > 0 else percentiles([]),
        "end_vs_schedule_ns": span - planned if planned > 0 else None,
    }
