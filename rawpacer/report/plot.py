"""PNG bar chart of ns/op per writer; loss marked in red, hatched and labelled.

Drawn on a bare ``matplotlib.figure.Figure`` (its own Agg canvas), so importing this module never
switches the process's backend: a notebook keeps its inline plots.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from rawpacer.bench.result import Report, WriterResult
from rawpacer.report.table import duration, status

COLOURS = {"rawpacer": "#3b75af", "go": "#8c8c8c", "loss": "#d62728"}
LOG_RATIO = 30
UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))


def _label(result: WriterResult, sweep: bool) -> str:
    return result.writer + (f" ({result.readers:,} readers)" if sweep else "")


def _unit(largest: float) -> tuple[float, str]:
    return next(((f, u) for f, u in UNITS if largest >= f), UNITS[-1])


def plot(report: Report, path: str | os.PathLike[str]) -> Path:
    """Horizontal bars of median ns/op (whiskers min–max); rows not all delivered intact are red and hatched."""
    rows = [r for r in report.results if r.samples or r.error]
    sweep = len(report.readers_counts) > 1
    spreads = [r.spread("ns_per_op") for r in rows]
    factor, unit = _unit(max((s.high for s in spreads if s), default=1.0))
    medians = [s.median / factor for s in spreads if s]
    log = bool(medians) and max(medians) / min(medians) > LOG_RATIO
    low_edge = min(medians) / 2 if log else 0.0
    fig = Figure(figsize=(10, 1.4 + 0.45 * max(len(rows), 1)), dpi=110)
    ax = fig.subplots()
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
    params = report.params
    ax.set_title(
        f"{params.get('mode')}: {', '.join(map(str, params.get('readers') or []))} readers, {params.get('size')} B {params.get('payload')} messages, "
        f"{report.machine.get('cores')} cores, {params.get('topology')} | grey = Go seed, red = loss or error",
        fontsize=10,
    )
    if log:
        ax.set_xscale("log")
        ax.set_xlabel(ax.get_xlabel() + ", log scale")
    ax.margins(x=0.45)
    ax.set_xlim(left=low_edge if log else 0.0)
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, format="png")
    return target
