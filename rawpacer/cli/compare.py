"""``rawpacer compare``: every writer side by side on the seed's job (and the Go seed with --with-go)."""

from __future__ import annotations

import argparse
import sys

from rich.progress import Progress

from rawpacer import outputs
from rawpacer.bench.config import Config, make_config
from rawpacer.bench.result import GO_BASELINE, Report, WriterResult
from rawpacer.bench.session import Listener, Session
from rawpacer.cli._files import did_not_run, save, save_hlogs
from rawpacer.cli._options import add_hdr, add_messages, add_pacing, add_sandbox, add_shapes, config_kwargs
from rawpacer.cli._progress import progress_bar
from rawpacer.errors import require
from rawpacer.host import describe, environment
from rawpacer.kernel import caps
from rawpacer.report.gofmt import report_lines
from rawpacer.report.jsonout import to_json
from rawpacer.report.table import duration, print_report, status, stdout_console

FORMATS = ("table", "go")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommand and its options."""
    p = sub.add_parser("compare", help="benchmark every writer side by side (ns/op, B/op, allocs/op, delivery)")
    add_messages(p, "100", "readers, or a list like 100,1000,10000 for a sweep")
    p.add_argument("--writers", default=None, help="comma-separated writer names (default: all)")
    add_sandbox(p)
    add_pacing(p, "the stream (with --mode stream; it then lasts --benchtime, a duration or Nx fan-outs)")
    p.add_argument("--mode", default="fanout", help="fanout (wait for every reader each op, as the seed) or stream")
    add_shapes(p)
    p.add_argument("--benchtime", default="1s", help="target time per writer: 1s, 0.5, 200ms, or an op count like 50x")
    p.add_argument("--count", default="1", help="repeat each writer N times, interleaved; report median (min-max)")
    p.add_argument(
        "--ci",
        action="store_true",
        help="bootstrap 95%% intervals of each median and ratio (needs --count 3 or more; on by itself from 3)",
    )
    p.add_argument("--json", dest="json_path", default=None, metavar="PATH", help="write every figure as JSON")
    p.add_argument("--plot", dest="plot_path", default=None, metavar="PATH", help="write a PNG bar chart of ns/op")
    add_hdr(p, "fan-out op times and paced streams' gap deviations")
    p.add_argument("--format", default="table", help="table (default) or go (benchmark lines for benchstat)")
    p.add_argument("--with-go", action="store_true", help="also build and run the Go port of the seed's benchmark")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Config:
    """Every option checked (UsageError, one line) before any namespace or process exists."""
    config = make_config(
        writers=args.writers,
        mode=args.mode,
        benchtime=args.benchtime,
        count=args.count,
        ci=bool(args.ci),
        with_go=bool(args.with_go),
        **config_kwargs(args),
    )
    require(args.format in FORMATS, f"format {args.format!r} is not allowed; use one of: {', '.join(FORMATS)}")
    for option, path in (("--json", args.json_path), ("--plot", args.plot_path)):
        if path is not None:
            outputs.check(option, path)
    if args.hdr_dir is not None:
        outputs.check_dir("--hdr", args.hdr_dir)
    return config


class Output:
    """Where the results go: table or Go lines on stdout, JSON and PNG files; also used on Ctrl-C."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.console = stdout_console()

    def emit(self, report: Report) -> bool:
        """Print the table or Go lines, then write the JSON and PNG asked for; False when a file
        had to go to a fallback place (or nowhere), which the exit code then says."""
        if self.args.format == "go":
            for line in report_lines(report):
                print(line, flush=True)
            for note in report.notes:
                print(f"# {note}", file=sys.stderr)
        else:
            print_report(report, self.console)
        sys.stdout.flush()
        ok = True
        if self.args.json_path:
            text = to_json(report) + "\n"
            ok &= save("the JSON", self.args.json_path, ".json", lambda p: p.write_text(text))
        if self.args.plot_path and any(r.samples for r in report.results):
            from rawpacer.report.plot import plot  # matplotlib is slow to import: only when asked

            ok &= save("the plot", self.args.plot_path, ".png", lambda p: plot(report, p))
        if self.args.hdr_dir:
            from rawpacer.report.hdrlog import compare_hlogs

            ok &= save_hlogs(self.args.hdr_dir, compare_hlogs(report))
        return ok


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
            figure = f"{duration(row.samples[-1].ns_per_op)}/op" if row.samples else status(row)
            print(f"done {row.writer} ({row.readers} readers): {figure}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Validate, run every writer (and the Go seed) in a fresh sandbox, print, write files."""
    config = config_from_args(args)
    caps.require("compare", caps.EVERYTHING, "compare")
    report = Report(describe(), config.params(), environment=environment())
    output = Output(args)
    progress = progress_bar()
    with progress:
        Session(config, report, _Progress(progress, config.steps()), on_interrupt=output.emit).run()
    saved = output.emit(report)
    failed = did_not_run((row.writer for row in report.results if row.error), config.named)
    return 0 if saved and not failed else 1
