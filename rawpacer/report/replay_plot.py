"""A replay's timing in one PNG (``rawpacer replay --plot``): every intact datagram's arrival
against when the schedule (the capture's gaps, or the set rate) put it, over the replay, and the
CDFs of the gaps between arrivals next to the gaps the schedule asked for.

Drawn on a bare ``matplotlib.figure.Figure`` like ``plot.py``, so the process's backend is untouched.
The arrivals are the kernel's receive stamps (SO_TIMESTAMPNS), so the figure shows what the wire
did, not what the sender meant.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rawpacer.bench.replay import ReplayResult

MAX_POINTS = 200_000
"""The most datagrams a panel draws (every k-th beyond that): the figure stays quick to write."""


def drawable(result: ReplayResult) -> bool:
    """Whether the replay has timing to draw: two or more datagrams arrived intact (readers need --rewrite)."""
    return result.timeline is not None and len(result.timeline[0]) >= 2


def _thin(values: np.ndarray) -> np.ndarray:
    return values[:: max(1, len(values) // MAX_POINTS)]


def _offered(ax: Axes, rx: np.ndarray, due: np.ndarray) -> None:
    """Arrival minus schedule (µs) against the schedule (ms): a flat line is a replay on time, a
    slope a rate off its target, a jump a pause of the sender, the descent after it the catch-up."""
    lead = int((rx - due).min())  # the path's own delay and the clocks' offset: the earliest datagram is 0
    ax.plot(_thin(due - due[0]) / 1e6, _thin(rx - due - lead) / 1e3, ".", markersize=2, color="C0")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("scheduled time from the first datagram, ms")
    ax.set_ylabel("arrival − schedule, µs (the earliest = 0)")
    ax.set_title("offered against scheduled timing", fontsize=10)


def _gaps(ax: Axes, rx: np.ndarray, due: np.ndarray) -> None:
    """The CDFs of the gaps between arrivals and between their scheduled times (µs, log)."""
    for name, times, style in (("arrivals", rx, "-"), ("schedule", due, "--")):
        gaps = np.sort(np.diff(times)) / 1e3
        shown = _thin(gaps)
        ax.plot(np.maximum(shown, 1e-3), np.linspace(0, 1, len(shown)), style, label=name, linewidth=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("gap to the previous datagram, µs (log)")
    ax.set_ylabel("fraction of gaps")
    ax.set_title("gaps: arrivals against the schedule", fontsize=10)
    ax.legend(fontsize=8)


def plot(result: ReplayResult, path: str | os.PathLike[str]) -> Path:
    """Two panels (offered against scheduled timing, the gap CDFs) as a PNG at ``path``."""
    assert result.timeline is not None
    rx, due = (np.asarray(a, np.int64) for a in result.timeline)
    fig = Figure(figsize=(13, 5), dpi=100)
    left, right = fig.subplots(1, 2)
    _offered(left, rx, due)
    _gaps(right, rx, due)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"replay of {result.source} with {result.writer} on {result.topology}, {result.timing.describe()}: "
        f"{len(rx):,} datagrams intact",
        fontsize=11,
    )
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, format="png")
    return target
