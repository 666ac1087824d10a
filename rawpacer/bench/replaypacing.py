"""A replay's pacing figures in bounded memory: ``pacing.fed.schedule_stats`` over the intact
arrivals' (receive time, due offset) pairs as they are matched, take by take, whatever the replay's
length; and a bounded subsample of them for plots (``ReplayResult.timeline``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rawpacer.bench.histograms import histogram
from rawpacer.pacing.fed import schedule_stats
from rawpacer.pacing.stats import QUANTILES, percentiles

EXACT_PAIRS = 1 << 21
"""Pairs a ``PacingStream`` keeps whole (16 bytes each, 32 MB) for exact figures; past them, gap
deviations go into an HdrHistogram."""
TIMELINE_POINTS = 1 << 16
"""Pairs a ``PacingStream`` keeps for plots (a systematic subsample, its stride doubled as it fills)."""


class PacingStream:
    """``schedule_stats`` of pairs handed over in batches (each in arrival order, batches in turn), in
    bounded memory: exact while at most ``exact`` pairs came (``gap_dev_from`` says "every gap"),
    then the rate and end figures still exact and the gap deviations' percentiles from an
    HdrHistogram (within 0.1 %, the max exact: ``gap_dev_from`` says "hdrhistogram"). Also a
    subsample of at most ``points`` pairs for plots (every ``stride``-th)."""

    def __init__(self, exact: int = EXACT_PAIRS, points: int = TIMELINE_POINTS) -> None:
        self.exact, self.points = exact, points
        self._held: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
        self.count = 0
        self._first: tuple[int, int] | None = None
        self._last: tuple[int, int] | None = None
        self._histogram: Any = None
        self._largest = 0
        self.stride = 1
        self._sample: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
        self._sampled = 0

    def add(self, rx_ns: npt.ArrayLike, due_ns: npt.ArrayLike) -> None:
        """One batch of pairs, in arrival order."""
        rx, due = np.asarray(rx_ns, np.int64), np.asarray(due_ns, np.int64)
        if not rx.size:
            return
        self._subsample(rx, due)
        if self._first is None:
            self._first = (int(rx[0]), int(due[0]))
        if self._histogram is None and self.count + rx.size > self.exact:
            self._spill()
        if self._histogram is None:
            self._held.append((rx, due))
        else:
            self._record(rx, due)
        self.count += rx.size
        self._last = (int(rx[-1]), int(due[-1]))

    def _subsample(self, rx: npt.NDArray[np.int64], due: npt.NDArray[np.int64]) -> None:
        at = (-self.count) % self.stride  # the pairs numbered a multiple of the stride
        self._sample.append((rx[at :: self.stride].copy(), due[at :: self.stride].copy()))
        self._sampled += self._sample[-1][0].size
        while self._sampled > self.points:  # twice the stride: every other pair kept goes
            rx_kept, due_kept = self.timeline()
            self.stride *= 2
            self._sample = [(rx_kept[::2].copy(), due_kept[::2].copy())]
            self._sampled = self._sample[0][0].size

    def _spill(self) -> None:
        """From exact to the histogram: the pairs held so far recorded in it."""
        self._histogram = histogram([])
        held, self._held, self._last = self._held, [], None
        for rx, due in held:
            self._record(rx, due)
            self._last = (int(rx[-1]), int(due[-1]))

    def _record(self, rx: npt.NDArray[np.int64], due: npt.NDArray[np.int64]) -> None:
        if self._last is not None:
            rx, due = np.concatenate([[self._last[0]], rx]), np.concatenate([[self._last[1]], due])
        deviations = np.abs(np.diff(rx) - np.diff(due))
        if not deviations.size:
            return
        self._largest = max(self._largest, int(deviations.max()))
        values, counts = np.unique(deviations, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist()):
            self._histogram.record_value(value, count)

    def timeline(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The subsample: receive times and due offsets (ns) of every ``stride``-th pair."""
        rx = np.concatenate([np.zeros(0, np.int64), *(r for r, _ in self._sample)])
        due = np.concatenate([np.zeros(0, np.int64), *(d for _, d in self._sample)])
        return rx, due

    def stats(self) -> dict[str, Any]:
        """``schedule_stats``'s figures, and ``gap_dev_from``: "every gap" or "hdrhistogram"."""
        if self._histogram is None:
            rx = np.concatenate([np.zeros(0, np.int64), *(r for r, _ in self._held)])
            due = np.concatenate([np.zeros(0, np.int64), *(d for _, d in self._held)])
            order = np.argsort(rx, kind="stable")  # takes may overlap a little in time: one order
            return {**schedule_stats(rx[order], due[order]), "gap_dev_from": "every gap"}
        assert self._first is not None and self._last is not None
        span, planned = self._last[0] - self._first[0], self._last[1] - self._first[1]
        figures = schedule_stats([self._first[0], self._last[0]], [self._first[1], self._last[1]])
        n = self.count
        figures["datagrams"] = n
        figures["rate_target_pps"] = (n - 1) * 1e9 / planned if planned > 0 else None
        figures["rate_achieved_pps"] = (n - 1) * 1e9 / span if span > 0 else None
        gaps = {key: int(self._histogram.get_value_at_percentile(q * 100)) for key, q in QUANTILES.items()}
        figures["gap_dev_ns"] = {**gaps, "max": self._largest} if planned > 0 else percentiles([])
        return {**figures, "gap_dev_from": "hdrhistogram"}
