"""The RFC 2544 run as a Markdown report in the RFC's reporting format (section 26): what was tested,
how long each trial ran, each test's table and the graphs, ready for a paper's appendix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rawpacer.bench.rfc2544_suite.result import Run
from rawpacer.bench.rfc2544_suite.sizes import FCS_LEN
from rawpacer.report.rfc2544_plot import plot
from rawpacer.report.rfc2544_table import Grid, bits, grids
from rawpacer.report.table import human


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(grid: Grid) -> str:
    """The grid as a GitHub Markdown table under a bold title, its legend below."""
    lines = [f"**{grid.title}**", "", "| " + " | ".join(grid.columns) + " |"]
    lines.append("| " + " | ".join(["---"] + ["---:"] * (len(grid.columns) - 1)) + " |")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in grid.rows]
    lines += [""] + [f"- {line}" for line in grid.legend()]
    return "\n".join(lines).rstrip() + "\n"


def _setup(run: Run) -> list[str]:
    machine, params = run.machine, run.params
    sizes = params.get("sizes") or run.sizes
    payloads = params.get("payload_bytes") or []
    family = "IPv6" if params.get("ipv6") else "IPv4"
    lines = [
        "## What was tested",
        "",
        (
            "- Device under test: the Linux kernel's receive path, from the writer's socket to "
            f"{params.get('readers', 'N')} UDP readers in a private network namespace "
            f"(topology `{params.get('topology', 'lo')}`); the readers check every datagram's content."
        ),
        (
            f"- Machine: {machine.get('cpu')}, {machine.get('cores')} cores, kernel {machine.get('kernel')}, "
            f"Python {machine.get('python')}."
        ),
        f"- Writers: {', '.join(run.writers) or '-'}. Protocol: UDP over {family}.",
        f"- Tests: {', '.join(params.get('tests') or [])}.",
        f"- Frame sizes (RFC 2544 counts the {FCS_LEN}-byte FCS; lo and veth carry the frame without it): "
        + ", ".join(
            f"{s} B ({p} B UDP payload)" if str(s).isdigit() else f"{s} (a size mix, its largest {p} B UDP payload)"
            for s, p in zip(sizes, payloads)
        ),
        "",
        "## Trials",
        "",
        (
            f"- Trial length {params.get('trial_s')} s (RFC 2544 section 24 asks for {params.get('rfc_trial_s')} s), "
            f"after an uncounted warm-up of {params.get('warmup_s')} s; counters read {params.get('drain_s')} s after "
            "the stream stopped (RFC 2544 waits 2 s after a 60 s trial; shorter trials wait in proportion)."
        ),
        _throughput_method(params),
        (
            f"- Latency: every datagram of {params.get('latency_trials')} trial(s) at the throughput rate: kernel "
            "receive timestamp minus departure timestamp (the kernel's software TX timestamp, or the writer's "
            "clock read just before the send, as the table says per writer)."
        ),
        (
            f"- Frame loss rate: from 100 % of the writer's unpaced maximum down in steps of "
            f"{params.get('loss_step', 0) * 100:g} %, until two successive trials lose nothing."
        ),
        (
            f"- Back-to-back: binary search on the burst length, {params.get('back_to_back_repeats')} repeat(s) averaged "
            f"(RFC 2544 26.4 asks for at least {params.get('rfc_back_to_back_repeats')})."
        ),
        "- Mbit/s count the frame as RFC 2544 does (with FCS, without preamble and inter-frame gap).",
        "",
    ]
    return lines


def _throughput_method(params: dict[str, Any]) -> str:
    """How the throughput was searched: RFC 2544's binary search, or MLRsearch (RFC 9971)."""
    writer = (
        f"A trial whose writer fell more than {params.get('writer_shortfall', 0) * 100:g} % short of the rate, "
        "or could not send every datagram, counts against the writer, not the kernel."
    )
    repeats = (
        f" Each search ran {params['repeat']} times; the tables say how far they agree."
        if params.get("repeat", 1) > 1
        else ""
    )
    if params.get("search") == "mlr":
        return (
            f"- Throughput: MLRsearch (RFC 9971, the PyPI MLRsearch package) for the NDR (no loss) and the PDR "
            f"({(params.get('pdr') or 0) * 100:g} % loss) at once, up to the writer's unpaced maximum from a floor "
            f"that holds 20 datagrams over the PDR's loss ratio per trial, to {params.get('resolution', 0) * 100:g} % of the upper bound, exceed ratio 0.5; the NDR is "
            f"the throughput; latency at 10, 50 and 90 % of the PDR. {writer}{repeats}"
        )
    return (
        f"- Throughput: binary search between 0 and the writer's unpaced maximum to "
        f"{params.get('resolution', 0) * 100:g} % of it, loss tolerance {params.get('loss_tolerance', 0) * 100:g} %; "
        f"the reported rate held in two trials. {writer}{repeats}"
    )


def _statements(run: Run) -> list[str]:
    """RFC 2544 26.1's statement of performance: rate, frame size, the limit of the medium (here the
    writer's unpaced maximum), the protocol; and what limited the figure."""
    lines = ["## Statement of performance (RFC 2544 26.1)", ""]
    for entry in run.results:
        if entry.throughput_pps is None:
            continue
        top = entry.writer_max_pps
        share = f"{entry.throughput_pps / top:.0%} of " if top else ""
        bound = " (reader-bound)" if entry.reader_bound else ""
        lines.append(
            f"- {entry.writer}, {entry.name} frames, UDP over {'IPv6' if entry.ipv6 else 'IPv4'}: "
            f"{human(entry.throughput_pps)} frames/s, {bits(entry.throughput_mbit)} ({share}the writer's unpaced "
            f"maximum, {human(top)} frames/s); limited by {entry.limited_by}; readers' capacity {human(entry.reader_capacity_pps)} datagrams/s{bound}"
        )
    return lines + [""]


def markdown_report(run: Run, graph: str | None = None) -> str:
    """The whole report; ``graph`` is the PNG's path relative to the report, if one was drawn."""
    lines = ["# RFC 2544 benchmark of kernel receive paths", ""]
    if run.interrupted:
        lines += ["> The run was interrupted: the figures below are those of the trials that finished.", ""]
    lines += _setup(run)
    lines += ["## Results", ""]
    for grid in grids(run):
        lines += [to_markdown(grid)]
    lines += _statements(run)
    if graph is not None:
        lines += ["## Graphs", "", f"![RFC 2544 graphs]({graph})", ""]
    notes = [f"{e.writer}, {e.name}: {note}" for e in run.results for note in e.notes]
    notes += [f"{e.writer}, {e.name}: error: {e.error}" for e in run.results if e.error]
    if notes or run.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in run.notes + notes] + [""]
    return "\n".join(lines)


def write_report(
    run: Run, path: str | os.PathLike[str], *, graphs: bool = True, named: str | os.PathLike[str] | None = None
) -> Path:
    """Write the report to ``path`` and, with ``graphs``, its PNG beside the report's final name
    ``named`` (default ``path``; a caller writing through a temporary file gives the real one), same
    name with ``.png``, which the report links to."""
    target = Path(path)
    graph = None
    if graphs and run.results:
        graph = plot(run, Path(named or target).with_suffix(".png")).name
    target.write_text(markdown_report(run, graph))
    return target
