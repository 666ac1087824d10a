"""PNG bar chart of ns/op per writer; loss marked in red, hatched and labelled.

Drawn on a bare ``matplotlib.figure.Figure`` (its own Agg canvas), so importing this module never
switches the process's backend: a notebook keeps its inline plots.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rawpacer.bench.result import Report, WriterResult
from rawpacer.report.table import duration, status, title

COLOURS = {"rawpacer": "#3b75af", "go": "#8c8c8c", "loss": "#d62728"}
LOG_RATIO = 30
UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))


def _label(result: WriterResult, sweep: bool) -> str:
    return result.writer + (f" ({result.readers:,} readers)" if sweep else "")


def _unit(largest: float) -> tuple[float, str]:
    return next(((f, u) for f, u in UNITS if largest >= f), UNITS[-1])


def _bars(ax: Axes, report: Report, rows: list[WriterResult]) -> None:
    """Horizontal bars of median ns/op (whiskers min–max); rows not all delivered intact are red and hatched."""
    sweep = len(report.readers_counts) > 1
    spreads = [r.spread("ns_per_op") for r in rows]
    factor, unit = _unit(max((s.high for s in spreads if s), default=1.0))
    medians = [s.median / factor for s in spreads if s]
    log = bool(medians) and max(medians) / min(medians) > LOG_RATIO
    low_edge = min(medians) / 2 if log else 0.0
    positions = list(range(len(rows)))[::-1]
    for pos, result, spread in zip(positions, rows, spreads):
        bad = not result.all_intact
        colour = COLOURS["loss"] if bad else COLOURS[result.source]
        text = ""
        if spread is not None:
            errors = [[(spread.median - spread.low) / factor], [(spread.high - spread.median) / factor]]
            ax.barh(
                pos,
                spread.median / factor,
                color=colour,
                hatch="//" if bad else "",
                xerr=errors,
                capsize=3,
                edgecolor="black",
                linewidth=0.5,
            )
            text = f" {duration(spread.median)}"
        if result.error and spread is None:
            text = f" did not run: {status(result)}"
        elif bad:
            text += f"  NOT ALL DELIVERED INTACT: {status(result)}"
        end = spread.high / factor if spread else low_edge
        ax.text(end, pos, text, va="center", fontsize=8, color=COLOURS["loss"] if bad else "black")
    ax.set_yticks(positions, [_label(r, sweep) for r in rows])
    ax.set_xlabel(f"ns/op in {unit}: wall time to send to every reader and see all delivered (lower is better)")
    ax.set_title(
        f"{title(report)}, {report.machine.get('cores')} cores\ngrey = Go seed, red = loss or error", fontsize=9
    )
    if log:
        ax.set_xscale("log")
        ax.set_xlabel(ax.get_xlabel() + ", log scale")
    ax.margins(x=0.45)
    ax.set_xlim(left=low_edge if log else 0.0)


def _poisson_fit(result: WriterResult) -> str:
    """For Poisson departures, how exponential the gaps were: their coefficient of variation (1 for
    exponential gaps) and the Kolmogorov-Smirnov statistic against the exponential."""
    figures = result.pacing() or {}
    if figures.get("pattern") != "poisson" or figures.get("cv") is None or figures.get("ks") is None:
        return ""
    return f" (gaps: cv {figures['cv']:.2f}, KS {figures['ks']:.3f})"


def _distribution(report: Report, rows: list[WriterResult]) -> tuple[str, str, list[tuple[str, list[float]]]] | None:
    """What the second panel shows: paced streams' gap deviations, or fan-out op times (as CDFs)."""
    sweep = len(report.readers_counts) > 1
    paced = [
        (_label(r, sweep) + _poisson_fit(r), r.samples[-1].gap_dev_cdf)
        for r in rows
        if r.samples and r.samples[-1].gap_dev_cdf
    ]
    if paced:
        return "|gap - ideal gap| between departures, µs (kernel RX timestamps)", "gaps", paced
    ops = [(_label(r, sweep), r.samples[-1].op_ns_cdf) for r in rows if r.samples and r.samples[-1].op_ns_cdf]
    if ops:
        return "op time, µs: the tail a mean ns/op hides", "ops", ops
    return None


def _cdfs(ax: Axes, label: str, what: str, curves: list[tuple[str, list[float]]]) -> None:
    for name, quantiles in curves:
        ax.plot([q / 1e3 for q in quantiles], np.linspace(0, 1, len(quantiles)), label=name, linewidth=1.2)
    ax.set_xscale("log")
    ax.set_xlabel(label + ", log scale")
    ax.set_ylabel(f"fraction of {what}")
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(fontsize=7, loc="lower right")


def plot(report: Report, path: str | os.PathLike[str]) -> Path:
    """ns/op per writer as bars, and below them the distribution behind it: the CDF of op times for
    fan-outs, of gap deviations for paced streams."""
    rows = [r for r in report.results if r.samples or r.error]
    extra = _distribution(report, rows)
    height = 1.4 + 0.45 * max(len(rows), 1)
    fig = Figure(figsize=(10, height + (4.0 if extra else 0.0)), dpi=110)
    if extra is None:
        _bars(fig.subplots(), report, rows)
    else:
        bars, curves = fig.subplots(2, 1, height_ratios=[height, 4.0])
        _bars(bars, report, rows)
        _cdfs(curves, *extra)
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, format="png")
    return target
