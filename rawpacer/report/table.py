"""The compare table (rich): one row per writer, loss highlighted, speed-ups vs udp-sendto and Go."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rawpacer.bench.result import BASELINE, GO_BASELINE, Report, Spread, WriterResult


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


def status(result: WriterResult) -> str:
    """``ok``, or what went wrong: error, lost, corrupt, duplicated datagrams."""
    if result.error:
        return result.error if result.error.startswith("unavailable") else f"error: {result.error}"
    problems = []
    for name in ("lost", "corrupt", "duplicate"):
        value = result.total(name)
        if value:
            problems.append(f"{value:,} {name}")
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


def build_table(report: Report) -> Table:
    """The results table; rows with loss or corruption in bold red, Go rows dimmed."""
    has_go = report.find(GO_BASELINE) is not None
    sweep = len(report.readers_counts) > 1
    params = report.params
    title = (
        f"{params.get('mode', 'fanout')}: {','.join(map(str, report.readers_counts))} readers, "
        f"{params.get('size')} B {params.get('payload')} messages, {params.get('topology')} topology"
    )
    table = Table(title=title, title_justify="left")
    columns = (
        ["writer"]
        + (["readers"] if sweep else [])
        + [
            "ns/op",
            "packets/s",
            "MB/s",
            "B/op",
            "allocs/op",
            "sent",
            "delivered",
            "intact",
            "trimmed B",
            f"vs {BASELINE}",
        ]
        + ([f"vs {GO_BASELINE}"] if has_go else [])
        + ["status"]
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("writer", "status") else "right", overflow="fold")
    for result in report.results:
        cells = (
            [result.writer]
            + ([str(result.readers)] if sweep else [])
            + [
                spread_text(result.spread("ns_per_op")),
                human(result.median("packets_per_s")),
                f"{result.median('mb_per_s'):.1f}" if result.samples else "-",
                human(result.median("bytes_per_op")),
                human(result.median("allocs_per_op")),
                _count(result.total("sent")),
                _count(result.total("delivered")),
                _count(result.total("intact")),
                str(result.trimmed_bytes),
                _ratio(report.speedup(result)),
            ]
            + ([_ratio(report.speedup(result, GO_BASELINE))] if has_go else [])
            + [status(result)]
        )
        style = None if result.all_intact and result.samples else "bold red"
        if style is None and result.source == "go":
            style = "dim"
        table.add_row(*cells, style=style)
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


def print_report(report: Report, console: Console) -> None:
    """Machine line, results table, sweep table (if any), then every note."""
    machine = report.machine
    console.print(
        f"{machine.get('cpu')}, {machine.get('cores')} cores, kernel {machine.get('kernel')}, "
        f"Python {machine.get('python')}; benchtime {report.params.get('benchtime')}, "
        f"count {report.params.get('count')}"
    )
    console.print(build_table(report))
    sweep = build_sweep_table(report)
    if sweep is not None:
        console.print(sweep)
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    if report.interrupted:
        console.print("interrupted: the results above are those finished before the interruption", style="yellow")
