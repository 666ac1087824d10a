"""The compare table (rich): one row per writer, loss highlighted, speed-ups vs udp-sendto and Go."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table

from rawpacer.bench import histograms
from rawpacer.bench.confidence import Interval
from rawpacer.bench.result import BASELINE, GO_BASELINE, Report, Spread, WriterResult
from rawpacer.host import worst

PIPE_WIDTH = 200
"""Columns a table gets when stdout is a file or a pipe: rich's 80 would cut the column names."""


def stdout_console() -> Console:
    """A console for the result tables: the terminal's width, or PIPE_WIDTH when redirected."""
    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)


def human(value: float | None, unit: str = "") -> str:
    """``1234567`` -> ``1.23M``: three significant figures with an SI suffix."""
    if value is None:
        return "-"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}{unit}"
    return f"{value:.3g}{unit}"


def duration(ns: float | None) -> str:
    """Nanoseconds as a readable duration: ``812 µs``, ``2.58 ms``."""
    if ns is None:
        return "-"
    for factor, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= factor:
            return f"{ns / factor:.3g} {unit}"
    return f"{ns:.3g} ns"


def spread_text(spread: Spread | None) -> str:
    """Median, and ``(min–max)`` when samples differ."""
    if spread is None:
        return "-"
    text = human(spread.median)
    if spread.low != spread.high:
        text += f" ({human(spread.low)}–{human(spread.high)})"
    return text


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


SAYS_ITSELF = ("unavailable", "refused")
"""Row errors that already say what happened (session.row_error): shown as they are, not as errors."""


def status(result: WriterResult) -> str:
    """``ok``, or what went wrong: error, lost, corrupt, duplicated, reordered datagrams."""
    if result.error:
        return result.error if result.error.startswith(SAYS_ITSELF) else f"error: {result.error}"
    problems = []
    for name in ("lost", "corrupt", "duplicate"):
        value = result.total(name)
        if value:
            problems.append(f"{value:,} {name}")
    reordering = result.reordering()
    if reordering is not None and reordering[0]:
        count, ratio, extent = reordering
        problems.append(f"{count:,} reordered ({ratio:.3%}, extent up to {extent:,})")
    drops = result.total("socket_drops")
    if drops:
        problems.append(f"{drops:,} dropped at the readers' sockets (receive buffers full)")
    incomplete = result.total("ops_incomplete")
    if incomplete:
        problems.append(f"{incomplete:,} op(s) incomplete")
    sent, delivered, intact = result.total("sent"), result.total("delivered"), result.total("intact")
    if not problems and sent is not None and delivered is not None and delivered < sent:
        problems.append(f"{sent - delivered:,} not delivered")
    if not problems and intact is not None and delivered is not None and intact < delivered:
        problems.append(f"{delivered - intact:,} not intact")
    if problems:
        return ", ".join(problems)
    if not result.samples:
        return "not run"
    return "ok" if intact is not None else "ok (counted, content not checked)"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def interval_text(found: Interval | None, show: Callable[[float], str] = human) -> str:
    """A bootstrap interval as ``[low–high]`` ("-" when there is none)."""
    return "-" if found is None else f"[{show(found.low)}–{show(found.high)}]"


def _ratio_ci(report: Report, result: WriterResult, baseline: str = BASELINE) -> str:
    """A speed-up with its 95 % interval, when the run has intervals."""
    text = _ratio(report.speedup(result, baseline))
    found = report.speedup_interval(result, baseline) if report.ci else None
    return text if found is None else f"{text} {interval_text(found, lambda v: f'{v:.2f}')}"


def _pacing(result: WriterResult, key: str) -> float | None:
    figures = result.pacing()
    return None if figures is None else figures.get(key)


def _gap_p99(result: WriterResult) -> str:
    figures = result.pacing()
    p99 = None if figures is None else figures["gap_dev_ns"]["p99"]
    return duration(p99)


def _late_p99(result: WriterResult) -> str:
    """The p99 of the departures' lateness against the intended schedule (re-anchors not hiding stalls)."""
    figures = result.pacing()
    late = None if figures is None else figures.get("lateness_ns")
    return duration(None if not late else late.get("p99"))


def _error(result: WriterResult) -> str:
    error = _pacing(result, "rate_error")
    return "-" if error is None else f"{error:+.3%}"


Cell = Callable[[Report, WriterResult], str]


@dataclass(frozen=True)
class Column:
    """One column of the results table: its header, its cell, and which runs show it."""

    header: str
    cell: Cell
    shown: Callable[[Report], bool] = lambda report: True


def _sweep(report: Report) -> bool:
    return len(report.readers_counts) > 1


def _has_go(report: Report) -> bool:
    return report.find(GO_BASELINE) is not None


def _fanout(report: Report) -> bool:
    return bool(report.params.get("mode", "fanout") == "fanout")


def _paced(report: Report) -> bool:
    return report.params.get("rate") is not None


def _router(report: Report) -> bool:
    return report.params.get("topology") == "router"


COLUMNS: tuple[Column, ...] = (
    Column("writer", lambda report, r: r.writer),
    Column("readers", lambda report, r: str(r.readers), _sweep),
    Column("ns/op", lambda report, r: spread_text(r.spread("ns_per_op"))),
    Column("ns/op 95% CI", lambda report, r: interval_text(r.interval("ns_per_op")), lambda report: report.ci),
    Column("p99/op", lambda report, r: human(r.median("ns_per_op_p99")), _fanout),
    Column("packets/s", lambda report, r: human(r.median("packets_per_s"))),
    Column("MB/s", lambda report, r: f"{r.median('mb_per_s'):.1f}" if r.samples else "-"),
    Column("B/op", lambda report, r: human(r.median("bytes_per_op"))),
    Column("allocs/op", lambda report, r: human(r.median("allocs_per_op"))),
    Column("sent", lambda report, r: _count(r.total("sent"))),
    Column("delivered", lambda report, r: _count(r.total("delivered"))),
    Column("intact", lambda report, r: _count(r.total("intact"))),
    Column("trimmed B", lambda report, r: str(r.trimmed_bytes)),
    Column("target/s", lambda report, r: human(_pacing(r, "rate_target_pps")), _paced),
    Column("achieved/s", lambda report, r: human(_pacing(r, "rate_achieved_pps")), _paced),
    Column("error", lambda report, r: _error(r), _paced),
    Column("gap dev p99", lambda report, r: _gap_p99(r), _paced),
    Column("late p99", lambda report, r: _late_p99(r), _paced),
    Column("DUT fwd/s", lambda report, r: human(r.median("dut_forwarded_pps")), _router),
    Column("DUT drops", lambda report, r: _count(r.total("dut_dropped")), _router),
    Column(f"vs {BASELINE}", lambda report, r: _ratio_ci(report, r)),
    Column(f"vs {GO_BASELINE}", lambda report, r: _ratio_ci(report, r, GO_BASELINE), _has_go),
    Column("status", lambda report, r: status(r)),
)
"""The results table, column by column (trafgen's way: a table of fields, not code per field)."""


def title(report: Report) -> str:
    """What the run was: mode, readers, messages, topology, IP version, VLAN and pacing."""
    params = report.params
    parts = [
        f"{params.get('mode', 'fanout')}: {','.join(map(str, report.readers_counts))} readers",
        f"{params.get('size')} B {params.get('payload')} messages",
        f"{params.get('topology')} topology, IPv{params.get('ip_version', 4)}",
    ]
    if params.get("vlan") is not None:
        parts.append(f"VLAN {params['vlan']} priority {params.get('vlan_priority', 0)}")
    if params.get("rate") is not None:
        shape = f", burst {params['burst']}" if params.get("burst", 1) != 1 else ""
        parts.append(f"paced at {params['rate']} ({params.get('pattern', 'constant')}{shape})")
    return ", ".join(parts)


def build_table(report: Report) -> Table:
    """The results table; rows with loss or corruption in bold red, Go rows dimmed."""
    columns = [c for c in COLUMNS if c.shown(report)]
    table = Table(title=title(report), title_justify="left")
    for column in columns:
        justify: Literal["left", "right"] = "left" if column.header in ("writer", "status") else "right"
        table.add_column(column.header, justify=justify, overflow="fold")
    for result in report.results:
        style = None if result.all_intact and result.samples else "bold red"
        if style is None and result.source == "go":
            style = "dim"
        table.add_row(*(column.cell(report, result) for column in columns), style=style)
    return table


def build_sweep_table(report: Report) -> Table | None:
    """ns per delivered packet at each readers count, and the last/first ratio (None: no sweep)."""
    rows = report.sweep()
    if not rows:
        return None
    counts = report.readers_counts
    table = Table(title="readers sweep: ns per delivered packet", title_justify="left")
    table.add_column("writer")
    for count in counts:
        table.add_column(f"{count:,} readers", justify="right")
    table.add_column(f"{counts[-1]:,}/{counts[0]:,}", justify="right")
    for row in rows:
        table.add_row(row["writer"], *(human(row["ns_per_packet"][c]) for c in counts), _ratio(row["ratio"]))
    return table


DISTRIBUTIONS = {"op_ns_hdr": "op time", "gap_dev_hdr": "gap deviation"}
"""The Sample keys that hold whole distributions (HdrHistograms), and what the table calls them."""


def distribution_rows(report: Report) -> list[list[str]]:
    """Per writer and distribution: every pass's histogram merged, its count and PERCENTILES to p99.99."""
    rows = []
    for result in report.results:
        for key, what in DISTRIBUTIONS.items():
            encoded = [text for s in result.samples if (text := getattr(s, key)) is not None]
            found = histograms.summary(histograms.merge(encoded)) if encoded else None
            if found is None or not found["count"]:
                continue
            label = f"{result.writer} ({result.readers:,})" if _sweep(report) else result.writer
            points = [duration(found[name]) for name in histograms.PERCENTILES]
            rows.append([label, what, f"{found['count']:,}", *points])
    return rows


def build_distribution_table(report: Report) -> Table | None:
    """The distributions the JSON and ``--hdr`` keep, to p99.99, with how many values each rests on."""
    rows = distribution_rows(report)
    if not rows:
        return None
    table = Table(title="distributions (every pass merged; HdrHistograms in the JSON and --hdr)", title_justify="left")
    for header in ("writer", "of", "count", *histograms.LABELS):
        table.add_column(header, justify="left" if header in ("writer", "of") else "right")
    for row in rows:
        table.add_row(*row)
    return table


def host_warning(report: Report) -> str | None:
    """One line when the host spoiled any pass: the worst pass's figures and every writer affected."""
    passes = [(r.writer, s.host) for r in report.results for s in r.samples if s.host is not None and s.host.spoiled]
    found = worst([activity for _, activity in passes])
    if found is None:
        return None
    writers = ", ".join(dict.fromkeys(writer for writer, _ in passes))
    return f"warning: {found.warning} (passes of {writers}; see docs/trusting-a-figure.md)"


def print_report(report: Report, console: Console) -> None:
    """Machine line, results table, sweep table (if any), every note, then the host warning (if any)."""
    machine = report.machine
    console.print(
        f"{machine.get('cpu')}, {machine.get('cores')} cores, kernel {machine.get('kernel')}, "
        f"Python {machine.get('python')}; benchtime {report.params.get('benchtime')}, "
        f"count {report.params.get('count')}"
    )
    console.print(build_table(report))
    for extra in (build_sweep_table(report), build_distribution_table(report)):
        if extra is not None:
            console.print(extra)
    row_notes = [f"{row.writer} ({row.readers} readers): {note}" for row in report.results for note in row.notes]
    for note in [*report.notes, *dict.fromkeys(row_notes)]:
        console.print(f"note: {note}", markup=False, highlight=False)
    warning = host_warning(report)
    if warning is not None:
        console.print(warning, style="yellow", markup=False, highlight=False)
    if report.interrupted:
        console.print("interrupted: the results above are those finished before the interruption", style="yellow")
