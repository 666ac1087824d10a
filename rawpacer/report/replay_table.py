"""A replay's table (rich): one row per flow and the total, then the pacing line, fitting and what
passed unchanged."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rawpacer.bench.replay import ReplayResult
from rawpacer.report.table import duration, human, stdout_console

COLUMNS = ("sent", "delivered", "intact", "late", "duplicated", "lost", "corrupt")
SEQUENCED = ("reordered", "reorder_extent")
"""Columns shown when some flow's payloads carry rawpacer's sequence field ("-" for the others)."""


def replay_table(result: ReplayResult) -> Table:
    """Per flow (number, reader port, captured destination) and the total: the verdict's counts."""
    table = Table(title=f"replay of {result.source} with {result.writer} on {result.topology}")
    columns = COLUMNS + (SEQUENCED if result.total.reordered is not None else ())
    for name in ("flow", "port", "captured dst", *columns):
        table.add_column(name, justify="right" if name in columns or name in ("flow", "port") else "left")

    def cells(verdict: object) -> list[str]:
        return ["-" if getattr(verdict, c) is None else str(getattr(verdict, c)) for c in columns]

    for row in result.flows:
        style = None if row.verdict.ok else "red"
        table.add_row(str(row.flow), str(row.port), f"{row.dst}:{row.dport}", *cells(row.verdict), style=style)
    table.add_row("total", "", "", *cells(result.total), style="bold")
    return table


def summary_lines(result: ReplayResult) -> list[str]:
    """What the table does not show, one fact a line."""
    counts = result.counts
    first = (
        f"{counts.records} frames read, {result.sent} sent in {result.duration_s:.3f} s "
        f"({human(result.sent / result.duration_s if result.duration_s else None)} frames/s); "
        f"{counts.datagrams} UDP rewritten, {counts.passed} other frames as captured "
        f"(interfaces: {result.interfaces.get('writer_tx_packets', 0)} sent, "
        f"{result.interfaces.get('reader_rx_packets', 0)} received)"
    )
    lines = [first]
    if counts.trimmed or counts.fragmented:
        lines.append(
            f"fit {result.fit}: {counts.trimmed} frames trimmed, {counts.fragmented} fragmented into {counts.fragments}"
        )
    if result.unsupported:
        lines.append("passed unchanged: " + ", ".join(f"{n} {why}" for why, n in result.unsupported.items()))
    pacing = result.pacing
    if pacing and pacing.get("rate_achieved_pps") is not None:
        target = pacing.get("rate_target_pps")
        gap = pacing["gap_dev_ns"]
        aim = f" of {human(target)}" if target else ""
        line = f"kernel RX: {human(pacing['rate_achieved_pps'])}{aim} datagrams/s"
        if target:
            line += (
                f", |gap deviation| p50 {duration(gap['p50'])}, p99 {duration(gap['p99'])}, max {duration(gap['max'])}"
                f", end vs schedule {duration(abs(pacing['end_vs_schedule_ns']))}"
                f" {'late' if pacing['end_vs_schedule_ns'] >= 0 else 'early'}"
            )
        lines.append(line)
    if result.pacer:
        late = result.pacer["lateness_ns"]
        lines.append(
            f"pacer: {result.pacer['departures']} departures, {result.pacer['stalls']} stalls, "
            f"lateness p50 {duration(late['p50'])}, p99 {duration(late['p99'])}"
        )
    lines.extend(result.notes)
    if result.why:
        lines.append(f"why: {result.why}")
    return lines


def print_replay(result: ReplayResult, console: Console | None = None) -> None:
    """The table and the summary lines."""
    console = console or stdout_console()
    if result.flows:
        console.print(replay_table(result))
    for line in summary_lines(result):
        console.print(line, highlight=False)
