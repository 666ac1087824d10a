"""``rawpacer compare``: every writer side by side on the seed's job (and the Go seed with --with-go)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rawpacer.bench import machine
from rawpacer.bench.result import GO_BASELINE, Report, WriterResult
from rawpacer.bench.session import Config, Listener, Session, make_config
from rawpacer.errors import require
from rawpacer.limits import MAX_MESSAGE_SIZE, MAX_MTU, MAX_READERS, MIN_MESSAGE_SIZE, MIN_MTU
from rawpacer.report.gofmt import report_lines
from rawpacer.report.jsonout import write_json
from rawpacer.report.table import duration, print_report

FORMATS = ("table", "go")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommand and its options."""
    p = sub.add_parser("compare", help="benchmark every writer side by side (ns/op, B/op, allocs/op, delivery)")
    p.add_argument(
        "--readers", default="100", help=f"readers, or a list like 100,1000,10000 for a sweep (1-{MAX_READERS})"
    )
    p.add_argument(
        "--size", default="1500", help=f"message bytes ({MIN_MESSAGE_SIZE}-{MAX_MESSAGE_SIZE}; default 1500)"
    )
    p.add_argument("--writers", default=None, help="comma-separated writer names (default: all)")
    p.add_argument("--topology", default="lo", help="lo or veth (default lo)")
    p.add_argument("--mtu", default=None, help=f"MTU of the veth pair, or of lo ({MIN_MTU}-{MAX_MTU})")
    p.add_argument(
        "--fit", default="trim", help="what raw writers do with messages over the MTU: trim, fragment, strict"
    )
    p.add_argument("--payload", default="crypto", help="message bytes: crypto (as the seed), fast, fixed")
    p.add_argument("--mode", default="fanout", help="fanout (wait for every reader each op, as the seed) or stream")
    p.add_argument("--benchtime", default="1s", help="target time per writer: 1s, 0.5, 200ms, or an op count like 50x")
    p.add_argument("--count", default="1", help="repeat each writer N times, interleaved; report median (min-max)")
    p.add_argument("--json", dest="json_path", default=None, metavar="PATH", help="write every figure as JSON")
    p.add_argument("--plot", dest="plot_path", default=None, metavar="PATH", help="write a PNG bar chart of ns/op")
    p.add_argument("--format", default="table", help="table (default) or go (benchmark lines for benchstat)")
    p.add_argument(
        "--pcap",
        default=None,
        metavar="PATH",
        help="raw writers write every frame they send to PATH-<writer>-<readers>.pcap (slows them)",
    )
    p.add_argument("--with-go", action="store_true", help="also build and run the Go port of the seed's benchmark")
    p.set_defaults(func=run)


def _output_path(option: str, path: str | None) -> str | None:
    if path is None:
        return None
    parent = Path(path).resolve().parent
    require(parent.is_dir(), f"{option} {path!r}: directory {str(parent)!r} does not exist")
    return path


def config_from_args(args: argparse.Namespace) -> Config:
    """Every option checked (UsageError, one line) before any namespace or process exists."""
    config = make_config(
        writers=args.writers,
        readers=args.readers,
        size=args.size,
        payload=args.payload,
        fit=args.fit,
        mode=args.mode,
        topology=args.topology,
        mtu=args.mtu,
        benchtime=args.benchtime,
        count=args.count,
        with_go=bool(args.with_go),
        pcap=args.pcap,
    )
    require(args.format in FORMATS, f"format {args.format!r} is not allowed; use one of: {', '.join(FORMATS)}")
    _output_path("--json", args.json_path)
    _output_path("--plot", args.plot_path)
    return config


class Output:
    """Where the results go: table or Go lines on stdout, JSON and PNG files; also used on Ctrl-C."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.console = Console(width=None if sys.stdout.isatty() else 200)

    def emit(self, report: Report) -> None:
        """Print the table or Go lines, then write the JSON and PNG asked for."""
        if self.args.format == "go":
            for line in report_lines(report):
                print(line, flush=True)
            for note in report.notes:
                print(f"# {note}", file=sys.stderr)
        else:
            print_report(report, self.console)
        if self.args.json_path:
            write_json(report, self.args.json_path)
            print(f"wrote {self.args.json_path}", file=sys.stderr)
        if self.args.plot_path and any(r.samples for r in report.results):
            from rawpacer.report.plot import plot  # matplotlib is slow to import: only when asked

            plot(report, self.args.plot_path)
            print(f"wrote {self.args.plot_path}", file=sys.stderr)
        sys.stdout.flush()


class _Progress(Listener):
    """A rich progress bar on a terminal; one plain line per finished pass on stderr otherwise."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=total)

    def start(self, label: str) -> None:
        """Show which pass runs now."""
        self.progress.update(self.task, description=label)

    def done(self, row: WriterResult) -> None:
        """Advance the bar, or print one line when there is no terminal."""
        if row.source != "go" or row.writer == GO_BASELINE:
            self.progress.advance(self.task)
        if self.progress.disable:
            figure = f"{duration(row.samples[-1].ns_per_op)}/op" if row.samples else f"error: {row.error}"
            print(f"done {row.writer} ({row.readers} readers): {figure}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Validate, run every writer (and the Go seed) in a fresh sandbox, print, write files."""
    config = config_from_args(args)
    require(os.geteuid() == 0, "compare needs root (network namespaces, raw sockets): run `sudo ./sudo-run.sh compare`")
    report = Report(machine.describe(), config.params())
    output = Output(args)
    errors = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        disable=not errors.is_terminal,
        transient=True,
    )
    with progress:
        Session(config, report, _Progress(progress, config.steps()), on_interrupt=output.emit).run()
    output.emit(report)
    return 0
