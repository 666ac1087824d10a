"""``rawpacer rfc2544``: RFC 2544's throughput, latency, frame loss and back-to-back tests (section 26)
per writer and frame size; the device under test is the kernel's receive path into N readers, or with
``--topology router`` a DUT namespace (``--dut`` profiles, ``--dut-setup`` scripts) between writer and readers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rawpacer import outputs
from rawpacer.bench.rfc2544_live import Rfc2544Config, make_rfc2544_config, new_run_for, run_rfc2544
from rawpacer.bench.rfc2544_suite import Entry, Recorder, Run, trial_budget
from rawpacer.bench.rfc2544_suite.result import TrialRecord
from rawpacer.cli._files import did_not_run, save, save_hlogs
from rawpacer.cli._options import add_device, add_hdr, device_kwargs
from rawpacer.cli._progress import progress_bar
from rawpacer.report.rfc2544_table import print_run
from rawpacer.report.table import stdout_console

METHODOLOGY_OPTIONS = {
    "sizes": (
        "--sizes",
        "frame sizes as RFC 2544 counts them, FCS included (default 64,...,1518; -6: 78,...); a size mix is one more row: imix or 64:7,594:4,1518:1",
    ),
    "tests": ("--tests", "throughput,latency,loss,back-to-back (default all)"),
    "trial": ("--trial", "each trial's length (default 2s; RFC 2544 asks for 60s)"),
    "resolution": ("--resolution", "throughput search resolution, of the unpaced maximum (default 0.5%%)"),
    "loss_tolerance": ("--loss-tolerance", "loss a throughput trial may have (default 0, the RFC's; e.g. 0.1%%)"),
    "loss_step": ("--loss-step", "frame loss rate step (default 10%%)"),
    "b2b_repeats": ("--b2b-repeats", "back-to-back searches per size, averaged (default 3; the RFC: 50)"),
    "latency_trials": ("--latency-trials", "latency trials at the throughput rate (default 1)"),
    "warmup": ("--warmup", "uncounted warm-up before each trial (default 0.25s)"),
    "drain": ("--drain", "wait for late datagrams after each trial (default: 2s per 60s of trial, 0.25s at least)"),
    "search": ("--search", "throughput search: binary (RFC 2544, default) or mlr (MLRsearch, RFC 9971: NDR and PDR)"),
    "pdr": ("--pdr", "with --search mlr, the PDR's loss ratio, more than 0 and less than 100%% (default 0.5%%)"),
    "repeat": ("--repeat", "throughput searches per writer and size; the tables say how far they agree (default 1)"),
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommand and its options."""
    p = sub.add_parser("rfc2544", help="RFC 2544 throughput, latency, frame loss and back-to-back per writer and size")
    p.add_argument("--writers", default=None, help="comma-separated writers (default: every pacable writer)")
    p.add_argument("--readers", default="100", help="kernel UDP readers the datagrams fan out to (1-10000)")
    add_device(p)
    p.add_argument("--payload", default="crypto", help="message bytes: crypto, fast, fixed")
    p.add_argument(
        "-6", "--ipv6", dest="ip_version", action="store_const", const=6, default=4, help="IPv6 and RFC 5180's sizes"
    )
    p.add_argument(
        "--vary",
        action="append",
        default=None,
        metavar="FIELD=RANGE[:inc|random]",
        help="vary a field per packet in every trial, repeatable (udp-sendto, packet-raw, ip-raw; not with "
        "the latency test; see docs/traffic.md)",
    )
    p.add_argument("--seed", default=None, help="seed of --vary ...:random (recorded in the JSON)")
    for dest, (flag, text) in METHODOLOGY_OPTIONS.items():
        p.add_argument(flag, dest=dest, default=None, help=text)
    p.add_argument("--json", dest="json_path", default=None, metavar="PATH", help="every trial, written as it ends")
    p.add_argument("--plot", dest="plot_path", default=None, metavar="PATH", help="the RFC's graphs as one PNG")
    p.add_argument("--report", dest="report_path", default=None, metavar="PATH.md", help="a Markdown report")
    add_hdr(p, "the latency trials' per-datagram latencies")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Rfc2544Config:
    """Every option checked (one line, exit 2) before anything is created, output paths included."""
    given = {dest: value for dest in METHODOLOGY_OPTIONS if (value := getattr(args, dest)) is not None}
    config = make_rfc2544_config(
        writers=args.writers,
        readers=args.readers,
        **device_kwargs(args),
        payload=args.payload,
        ip_version=args.ip_version,
        vary=args.vary,
        seed=args.seed,
        **given,
    )
    for option, path in (("--json", args.json_path), ("--plot", args.plot_path), ("--report", args.report_path)):
        if path is not None:
            outputs.check(option, path)
    if args.hdr_dir is not None:
        outputs.check_dir("--hdr", args.hdr_dir)
    return config


def emit(run_: Run, args: argparse.Namespace, recorder: Recorder) -> bool:
    """Print the tables, then write the plot and report asked for; False when a file went elsewhere."""
    print_run(run_, stdout_console())
    sys.stdout.flush()
    ok = True
    if args.json_path:
        ok &= recorder.moved is None
        print(
            ("" if recorder.moved is None else "rawpacer: ")
            + outputs.Written(recorder.path or Path(args.json_path), recorder.moved).message("the JSON"),
            file=sys.stderr,
        )
    if args.plot_path and run_.results:
        from rawpacer.report.rfc2544_plot import plot  # matplotlib is slow to import: only when asked

        ok &= save("the plot", args.plot_path, ".png", lambda p: plot(run_, p))
    if args.report_path:
        from rawpacer.report.rfc2544_markdown import write_report

        ok &= save("the report", args.report_path, ".md", lambda p: write_report(run_, p, named=outputs.final_path(p)))
    if args.hdr_dir:
        from rawpacer.report.hdrlog import rfc2544_hlogs

        ok &= save_hlogs(args.hdr_dir, rfc2544_hlogs(run_))
    return ok


def run(args: argparse.Namespace) -> int:
    """Run the suite in a fresh sandbox with a progress bar over trials; print and write the results."""
    config = config_from_args(args)
    progress = progress_bar()
    budget = trial_budget(config.settings, 1.0) * len(config.settings.sizes) * len(config.config.writers)
    task = progress.add_task("starting", total=budget)

    def on_trial(entry: Entry, record: TrialRecord) -> None:
        progress.update(task, advance=1, description=f"{entry.writer} {entry.name}")

    recorder = Recorder(new_run_for(config), args.json_path, on_trial)
    try:
        with progress:
            finished = run_rfc2544(config, recorder)
    except KeyboardInterrupt:
        emit(recorder.run, args, recorder)
        raise
    saved = emit(finished, args, recorder)
    failed = did_not_run((e.writer for e in finished.results if e.error), config.config.named)
    return 0 if saved and not failed else 1
