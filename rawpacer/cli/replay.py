"""``rawpacer replay FILE``: a pcap or pcapng capture sent through a link-header writer on a schedule
(its captured timing, a rate, or top speed), its UDP flows rewritten onto readers that check every
datagram, per flow (docs/replay.md)."""

from __future__ import annotations

import argparse

from rawpacer import outputs
from rawpacer.bench.config import make_config
from rawpacer.bench.replay import file_source, run, write_json
from rawpacer.bench.replayplan import Timing, parse_limit, parse_loops
from rawpacer.cli._options import add_sandbox, add_waits, sandbox_kwargs
from rawpacer.errors import require
from rawpacer.host.placement import parse_cpu
from rawpacer.report.replay_table import print_replay


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommand and its options."""
    p = sub.add_parser("replay", help="replay a pcap/pcapng through a writer; check every UDP flow at readers")
    p.add_argument("file", help="the capture (pcap or pcapng)")
    p.add_argument("--writer", default="packet-raw", help="packet-raw (default), packet-ring, xdp or scapy")
    p.add_argument(
        "--fit", default="trim", help="frames over the MTU: trim, fragment, or strict (refused before sending)"
    )
    add_sandbox(p)
    timing = p.add_argument_group("timing (one of)")
    timing.add_argument("--timing", default=None, help="captured: the capture's own gaps (the default)")
    timing.add_argument("--speed", default=None, help="captured timing this many times faster (default 1)")
    timing.add_argument("--rate", default=None, help="frames/s (10k, 1Mpps) or a bit rate on the frames (200Mbit)")
    timing.add_argument("--topspeed", action="store_true", help="as fast as the writer goes")
    add_waits(timing, "replay", spin_default=None)  # None: --spin is refused with --topspeed only when given
    p.add_argument(
        "--cpu",
        default=None,
        metavar="N",
        help="send from CPU N alone; readers and planning on the other CPUs (default: the scheduler places them)",
    )
    p.add_argument("--loop", default="1", help="replay the file this many times, the schedule continuous (default 1)")
    p.add_argument("--limit", default=None, help="send at most this many frames in all")
    p.add_argument(
        "--rewrite",
        action="store_true",
        help="map UDP flows onto the sandbox's readers, which check each datagram (without it: --tx-iface only)",
    )
    p.add_argument("--json", default=None, metavar="PATH", help="write the result as JSON")
    p.add_argument(
        "--plot",
        default=None,
        metavar="PATH",
        help="write a PNG of the timing: arrivals against the schedule, gap CDFs (needs --rewrite)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Check every option and the file, then replay; exit 1 when a datagram was lost, late, duplicated or corrupt."""
    config = make_config(writers=args.writer, fit=args.fit, **sandbox_kwargs(args))
    chosen = Timing.parse(args.timing, args.speed, args.rate, args.topspeed, args.spin, args.catch_up)
    loops, limit = parse_loops(args.loop), parse_limit(args.limit)
    placement = parse_cpu(args.cpu)
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if path is not None:
            outputs.check(option, path)
    require(args.plot is None or args.rewrite, "--plot draws what the readers received: add --rewrite")
    result = run(
        file_source(args.file),
        config.writers[0],
        config,
        chosen,
        loops=loops,
        limit=limit,
        rewrite=args.rewrite,
        placement=placement,
        say=print,
    )
    result.source = args.file
    print_replay(result)
    if args.json is not None:
        print(write_json(result, args.json).message("the JSON"))
    if args.plot is not None:
        from rawpacer.report import replay_plot  # matplotlib is slow to import: only when asked

        if replay_plot.drawable(result):
            written = outputs.write(args.plot, lambda p: replay_plot.plot(result, p), suffix=".png")
            print(written.message("the plot"))
        else:
            print("no plot: fewer than two datagrams arrived intact")
    return 0 if result.ok else 1
