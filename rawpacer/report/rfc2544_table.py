"""The RFC 2544 tables, one per test (writer × frame size), as plain grids: rich renders them on a
terminal and ``rfc2544_markdown`` in the report, so both show the same cells and marks."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from rawpacer.bench import histograms
from rawpacer.bench.rfc2544_suite.result import Entry, Run, l2_mbit, mbit, size_heading
from rawpacer.report.table import duration, human

MARKS = {
    "R": "reader-bound: within 80 % of the readers' measured capacity, so possibly the readers' limit",
    "W": "writer-limited: the writer could not offer a higher rate (or reached its unpaced maximum)",
    "D": "DUT-limited: above this rate the device under test dropped datagrams (its own counters say so)",
    "?": "not confirmed: the search's figure, but no rate held twice",
    "≥": "a lower bound: the longest burst tried lost nothing",
    "!": "the entry did not finish (error or interrupted)",
    "H": "host-spoiled: a trial ran while steal, other processes or a stall took the CPU (docs/trusting-a-figure.md)",
}


@dataclass
class Grid:
    """A titled table of text cells; ``flagged`` rows are the ones to notice (loss, errors)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)
    marks: set[str] = field(default_factory=set)

    def add(self, cells: list[str], marks: str = "", flagged: bool = False) -> None:
        """Append a row; ``marks`` are the MARKS its cells use, for the legend."""
        self.rows.append(cells)
        self.flagged.append(flagged)
        self.marks.update(marks)

    def legend(self) -> list[str]:
        """One line per mark used in the grid."""
        return [f"{mark} {MARKS[mark]}" for mark in MARKS if mark in self.marks]


def bits(mbit: float | None) -> str:
    """Mbit/s as readable text: ``1.23Gbit/s``, ``314Mbit/s``."""
    return "-" if mbit is None else human(mbit * 1e6, "bit/s")


def _host(entry: Entry, test: str) -> str:
    """``H`` when a trial of ``test`` in the entry ran while the host took the CPU (see MARKS)."""
    return "H" if any(t.spoiled for t in entry.trials if t.test == test) else ""


def _marks(entry: Entry) -> str:
    """The marks of an entry's throughput figure (see MARKS)."""
    marks = ""
    if entry.reader_bound:
        marks += "R"
    if entry.limited_by == "writer":
        marks += "W"
    if entry.limited_by == "dut":
        marks += "D"
    if entry.throughput_pps is None and entry.throughput_candidate_pps is not None:
        marks += "?"
    if not entry.finished:
        marks += "!"
    return marks + _host(entry, "throughput")


def _goal_marks(entry: Entry, limited_by: str | None) -> str:
    """The marks of an NDR or PDR figure: W and D as for the throughput (``search.limited_by``), R, !, H."""
    marks = "R" if entry.reader_bound else ""
    marks += {"writer": "W", "dut": "D"}.get(limited_by or "", "")
    return marks + ("" if entry.finished else "!") + _host(entry, "throughput")


def _rate_cell(pps: float | None, size: float, marks: str, dut: bool) -> str:
    if pps is None:
        return f"unreachable {marks}".rstrip()
    text = f"{human(pps)} pps, {bits(mbit(pps, size))}" + (f" ({bits(l2_mbit(pps, size))} L2)" if dut else "")
    return f"{text} {marks}" if marks else text


def ndr_pdr_grid(run: Run) -> Grid:
    """MLRsearch (RFC 9971): NDR and PDR per writer and frame size, marks beside, and how far repeats agree."""
    pdr = run.params.get("pdr") or 0.0
    dut = bool(run.params.get("dut"))
    title = f"MLRsearch (RFC 9971): NDR (no loss) and PDR ({pdr * 100:g} % loss), pps and Mbit/s (frame with FCS)"
    if dut:
        title += "; L2: as the DUT's qdisc counts it"
    grid = Grid(title, ["writer", "frame", "NDR", "PDR", "repeats agree within"])
    for entry in run.results:
        if not entry.ndr_runs:
            continue
        ndr_marks, pdr_marks = _goal_marks(entry, entry.ndr_limited_by), _goal_marks(entry, entry.pdr_limited_by)
        agree = [
            f"{name} {s:.1%}" for name, s in (("NDR", entry.ndr_spread), ("PDR", entry.pdr_spread)) if s is not None
        ]
        cells = [
            entry.writer,
            entry.name,
            _rate_cell(entry.ndr_pps, entry.mean_size, ndr_marks, dut),
            _rate_cell(entry.pdr_pps, entry.mean_size, pdr_marks, dut),
            ", ".join(agree) or "-",
        ]
        grid.add(cells, ndr_marks + pdr_marks, flagged="!" in ndr_marks)
    return grid


def pdr_latency_grid(run: Run) -> Grid:
    """Latency at 10, 50 and 90 % of the PDR (FD.io CSIT's points): count, p50 to p99.99, max."""
    grid = Grid(
        "latency at 10, 50 and 90 % of the PDR (as FD.io CSIT reports it), per datagram",
        ["writer", "frame", "load", "rate", "count", *histograms.LABELS, "departure time"],
    )
    for entry in run.results:
        for key, found in entry.latency_at_pdr.items():
            cells = [entry.writer, entry.name, f"{key} % PDR", f"{human(found['rate_pps'])} pps"]
            grid.add(
                cells + distribution_cells(found.get("hdr"), found.get("latency_ns")) + [found.get("source") or "-"]
            )
    return grid


def repeat_grid(run: Run) -> Grid:
    """``--repeat N``: each search's throughput figure, and their spread ((max - min) / median)."""
    grid = Grid(
        "repeated throughput searches: each one's figure, and how far they agree", ["writer", "frame", "runs", "spread"]
    )
    for entry in run.results:
        if len(entry.throughput_runs) < 2:
            continue
        runs = ", ".join("none" if r is None else human(r) for r in entry.throughput_runs)
        spread = "-" if entry.throughput_spread is None else f"{entry.throughput_spread:.1%}"
        grid.add([entry.writer, entry.name, runs, spread])
    return grid


def _size_columns(run: Run) -> list[str]:
    return ["writer"] + [size_heading(size) for size in run.sizes]


def throughput_grid(run: Run) -> Grid:
    """Throughput (26.1): pps and Mbit/s, writer rows × frame size columns, marks beside."""
    title = "throughput (RFC 2544 26.1): zero-loss rate, pps and Mbit/s (frame with FCS)"
    if run.params.get("dut"):
        title += "; L2: as the DUT's qdisc counts it (frame without FCS)"
    grid = Grid(title, _size_columns(run))
    for writer in run.writers:
        cells, used = [writer], ""
        for size in run.sizes:
            entry = run.find(writer, size)
            marks = "" if entry is None else _marks(entry)
            used += marks
            pps = None if entry is None else entry.throughput_pps or entry.throughput_candidate_pps
            if entry is None or pps is None:
                cells.append("-" if entry is None or entry.error is None else "error !")
                continue
            text = f"{human(pps)} pps, {bits(mbit(pps, entry.mean_size))}"
            if run.params.get("dut"):
                text += f" ({bits(l2_mbit(pps, entry.mean_size))} L2)"
            cells.append(f"{text} {marks}" if marks else text)
        grid.add(cells, used, flagged="!" in used)
    return grid


def latency_grid(run: Run) -> Grid:
    """Latency (26.2) at the throughput rate: how many datagrams, p50 to p99.99, max, and the departure-time
    source (p90 and p99.99 from the HdrHistogram; a file without one shows the exact points it has)."""
    grid = Grid(
        "latency (RFC 2544 26.2) at the throughput rate, per datagram",
        ["writer", "frame", "rate", "count", *histograms.LABELS, "departure time"],
    )
    for entry in run.results:
        stats = entry.latency_ns
        if stats is None:
            continue
        host_mark = _host(entry, "latency")
        cells = [entry.writer, entry.name, f"{human(entry.latency_rate_pps)} pps"]
        cells[2] += f" {host_mark}" if host_mark else ""
        grid.add(cells + distribution_cells(entry.latency_hdr, stats) + [entry.latency_source or "-"], host_mark)
    return grid


def distribution_cells(encoded: str | None, exact: dict[str, float] | None = None) -> list[str]:
    """The count and PERCENTILES of an encoded HdrHistogram, as cells (every point from the histogram,
    within 0.1 %, so they never cross); without one (an older file), the exact points it has."""
    if encoded is None:
        found: dict[str, float | None] = dict.fromkeys(histograms.PERCENTILES)
        found.update({k: v for k, v in (exact or {}).items() if k in found})
        return ["-", *(duration(found[k]) for k in histograms.PERCENTILES)]
    summary = histograms.summary(histograms.decode(encoded))
    return [f"{summary['count']:,}", *(duration(summary[k]) for k in histograms.PERCENTILES)]


def loss_grid(run: Run) -> Grid:
    """Frame loss rate (26.3): loss % at each percent of the writer's unpaced maximum tried."""
    percents = sorted({p for e in run.results for p, _ in e.loss_curve}, reverse=True)
    grid = Grid(
        "frame loss rate (RFC 2544 26.3): % lost at each % of the writer's unpaced maximum",
        ["writer", "frame", "max"] + [f"{p:g} %" for p in percents],
    )
    for entry in run.results:
        if not entry.loss_curve:
            continue
        points = {p: loss for p, loss in entry.loss_curve}
        cells = [entry.writer, entry.name, f"{human(entry.writer_max_pps)} pps"]
        for percent in percents:
            loss = points.get(percent)
            mark = " R" if percent in entry.loss_reader_bound else ""
            cells.append("" if loss is None else f"{loss * 100:.3g}{mark}")
        host_mark = _host(entry, "loss")
        cells[2] += f" {host_mark}" if host_mark else ""
        grid.add(cells, ("R" if entry.loss_reader_bound else "") + host_mark)
    return grid


def back_to_back_grid(run: Run) -> Grid:
    """Back-to-back (26.4): mean longest lossless burst (frames) over the repeats, and their spread."""
    grid = Grid(
        "back-to-back (RFC 2544 26.4): longest burst without loss, frames (mean of repeats)", _size_columns(run)
    )
    for writer in run.writers:
        cells, used = [writer], ""
        for size in run.sizes:
            entry = run.find(writer, size)
            if entry is None or entry.back_to_back_frames is None:
                cells.append("-")
                continue
            runs = entry.back_to_back_runs
            spread = f" ({min(runs):,}–{max(runs):,})" if min(runs) != max(runs) else ""
            mark = ("≥" if entry.back_to_back_capped else "") + _host(entry, "back-to-back")
            used += mark
            cells.append(f"{entry.back_to_back_frames:,.0f}{spread}" + (f" {mark}" if mark else ""))
        grid.add(cells, used)
    return grid


def grids(run: Run) -> list[Grid]:
    """The tables of the tests the run made, in the RFC's order (empty ones left out)."""
    tests = run.params.get("tests") or []
    builders = (
        ("throughput", throughput_grid),
        ("latency", latency_grid),
        ("loss", loss_grid),
        ("back-to-back", back_to_back_grid),
    )
    made = [build(run) for test, build in builders if test in tests]
    if "throughput" in tests or "latency" in tests:
        made[1:1] = [ndr_pdr_grid(run), pdr_latency_grid(run), repeat_grid(run)]
    return [grid for grid in made if grid.rows]


def to_rich(grid: Grid) -> Table:
    """A rich Table of the grid: numbers right-aligned, flagged rows in bold red."""
    table = Table(title=grid.title, title_justify="left", caption="\n".join(grid.legend()) or None)
    for index, name in enumerate(grid.columns):
        table.add_column(name, justify="left" if index == 0 else "right", overflow="fold")
    for cells, flagged in zip(grid.rows, grid.flagged):
        table.add_row(*cells, style="bold red" if flagged else None)
    return table


def print_run(run: Run, console: Console) -> None:
    """The machine and trial settings in a line, then each test's table and the run's notes."""
    machine, params = run.machine, run.params
    console.print(
        f"{machine.get('cpu')}, {machine.get('cores')} cores, kernel {machine.get('kernel')}; "
        f"trials {params.get('trial_s')} s (RFC: {params.get('rfc_trial_s')} s), "
        f"resolution {params.get('resolution', 0) * 100:g} %, loss tolerance {params.get('loss_tolerance', 0) * 100:g} %"
    )
    for grid in grids(run):
        console.print(to_rich(grid))
    for note in run.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    if run.interrupted:
        console.print("interrupted: the tables show the trials finished before the interruption", style="yellow")
