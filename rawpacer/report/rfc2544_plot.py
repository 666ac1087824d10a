"""The RFC 2544 graphs in one PNG: throughput against frame size (pps and Mbit/s), loss curves and
latency CDFs, the graphs section 26 asks for.

Drawn on a bare ``matplotlib.figure.Figure`` like ``plot.py``, so the process's backend is untouched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rawpacer.bench.rfc2544_suite.result import Entry, Run, mbit

STYLES: tuple[str | tuple[int, tuple[int, ...]], ...] = (
    "-",
    "--",
    ":",
    "-.",
    (0, (5, 1, 1, 1, 1, 1)),
    (0, (1, 3)),
    (0, (8, 2, 2, 2)),
)
"""One dash pattern per frame size (RFC 2544's seven sizes each get their own)."""


def _colour(run: Run, writer: str) -> str:
    return f"C{run.writers.index(writer) % 10}"


def _value(entry: Entry, bits: bool, pps: float | None) -> float:
    """``pps`` of this entry's frames, or their Mbit/s."""
    return (mbit(pps, entry.mean_size) if bits else pps) or 0.0


def _series(ax: Axes, entries: list[Entry], name: str, bits: bool, fmt: str, **style: Any) -> None:
    """One line of an Entry figure (``throughput_pps``, ``writer_max_pps``) against frame size."""
    shown = [e for e in entries if getattr(e, name) is not None]
    if shown:
        ax.plot([e.frame_size for e in shown], [_value(e, bits, getattr(e, name)) for e in shown], fmt, **style)


def _mixes(ax: Axes, entries: list[Entry], bits: bool, colour: str) -> None:
    """A size mix's throughput as one marker at its mean frame size, labelled with the mix (``imix``)."""
    for entry in entries:
        if entry.throughput_pps is not None:
            y = _value(entry, bits, entry.throughput_pps)
            ax.plot([entry.mean_size], [y], "D", color=colour)
            ax.annotate(entry.label, (entry.mean_size, y), textcoords="offset points", xytext=(4, 4), fontsize=8)


def _throughput(ax: Axes, run: Run, bits: bool) -> None:
    fixed = [int(s) for s in run.sizes if s.isdigit()]
    for writer in run.writers:
        rows = [e for e in (run.find(writer, s) for s in run.sizes) if e is not None]
        entries = [e for e in rows if e.mix is None]
        colour = _colour(run, writer)
        _mixes(ax, [e for e in rows if e.mix is not None], bits, colour)
        _series(ax, entries, "throughput_pps", bits, "o-", color=colour, label=f"{writer} throughput")
        _series(ax, entries, "writer_max_pps", bits, "--", color=colour, alpha=0.5, label=f"{writer} unpaced max")
        bound = [e for e in entries if e.reader_bound]
        _series(ax, bound, "throughput_pps", bits, "s", mfc="none", mec="red", ms=11, label=f"{writer} reader-bound")
    ax.set_xscale("log", base=2)
    ax.set_xticks(fixed, [str(s) for s in fixed])
    ax.set_xlabel("frame size, bytes with FCS (RFC 2544)")
    ax.set_ylabel("Mbit/s (frame with FCS)" if bits else "datagrams/s")
    ax.set_title("throughput (26.1), " + ("Mbit/s" if bits else "pps"), fontsize=10)
    ax.set_ylim(bottom=0)


def _size_style(run: Run, entry: Entry) -> str | tuple[int, tuple[int, ...]]:
    return STYLES[run.sizes.index(entry.label) % len(STYLES)]


def _loss(ax: Axes, run: Run) -> None:
    for entry in run.results:
        if entry.loss_curve:
            ax.plot(
                [p for p, _ in entry.loss_curve],
                [loss * 100 for _, loss in entry.loss_curve],
                marker=".",
                linestyle=_size_style(run, entry),
                color=_colour(run, entry.writer),
                label=f"{entry.writer} {entry.name}",
            )
    ax.set_xlabel("offered rate, % of the writer's unpaced maximum")
    ax.set_ylabel("frames lost, %")
    ax.set_title("frame loss rate (26.3)", fontsize=10)
    ax.set_xlim(105, 0)


def _latency(ax: Axes, run: Run) -> None:
    for entry in run.results:
        count = len(entry.latency_cdf)
        points = [(ns, i / (count - 1)) for i, ns in enumerate(entry.latency_cdf) if ns > 0] if count > 1 else []
        if points:
            ax.plot(
                [ns / 1e3 for ns, _ in points],
                [fraction for _, fraction in points],
                linestyle=_size_style(run, entry),
                color=_colour(run, entry.writer),
                label=f"{entry.writer} {entry.name} ({entry.latency_source})",
            )
    ax.set_xscale("log")
    ax.set_xlabel("one-way latency, µs (log)")
    ax.set_ylabel("fraction of datagrams")
    ax.set_title("latency CDF at the throughput rate (26.2)", fontsize=10)


def plot(run: Run, path: str | os.PathLike[str]) -> Path:
    """Four panels: throughput in pps and in Mbit/s against frame size, loss curves, latency CDFs."""
    fig = Figure(figsize=(13, 9), dpi=100)
    axes = fig.subplots(2, 2)
    _throughput(axes[0][0], run, bits=False)
    _throughput(axes[0][1], run, bits=True)
    _loss(axes[1][0], run)
    _latency(axes[1][1], run)
    for ax in axes.flat:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    machine, params = run.machine, run.params
    fig.suptitle(
        f"RFC 2544 on {machine.get('cpu')}, {machine.get('cores')} cores, kernel {machine.get('kernel')}: "
        f"{params.get('trial_s')} s trials" + (" (interrupted)" if run.interrupted else ""),
        fontsize=11,
    )
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, format="png")
    return target
