"""``rawpacer send``: send fan-outs with one writer and show what every reader got.

By default everything happens in a fresh sandbox with kernel UDP readers: every datagram is
checked, and the kernel's own counters explain any loss. ``--iface NAME`` is the one explicit way
to send raw frames on an interface rawpacer did not create: it warns naming the interface, and
delivery cannot be checked there (no rawpacer readers).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from rawpacer import diagnose, outputs
from rawpacer.bench import histograms, rig
from rawpacer.bench.config import Config, make_config, parse_int
from rawpacer.bench.oploop import ASAP, OpLoop, depart
from rawpacer.bench.runner import Paced, paced
from rawpacer.bench.session import describe_sizes, shaped
from rawpacer.cli._files import save_hlogs
from rawpacer.cli._options import add_hdr, add_messages, add_pacing, add_sandbox, add_shapes, config_kwargs
from rawpacer.diagnose import Counters
from rawpacer.errors import ReaderDied, require
from rawpacer.headers.addresses import parse_ip, parse_mac
from rawpacer.kernel import caps
from rawpacer.limits import FIRST_PORT, MAX_PORT
from rawpacer.messages import MessageSource
from rawpacer.pacing import stream_stats
from rawpacer.readers import OpResult
from rawpacer.remote.readerset import AnyReaders, RemoteReaderSet, host_line, remote_line
from rawpacer.sandbox import Topology
from rawpacer.sandbox.topology import link_info
from rawpacer.writers import Link, Target, WriterOptions, get
from rawpacer.writers.base import Writer

OPS_MAX = 100000


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommand and its options."""
    p = sub.add_parser("send", help="send fan-outs with one writer; show and check what each reader got")
    p.add_argument("--writer", default="packet-ring", help="writer name (default packet-ring)")
    add_messages(p, "10", "readers / destination ports")
    add_sandbox(p)
    add_pacing(p, "each fan-out's datagrams")
    add_shapes(p)
    add_hdr(p, "each paced fan-out's gap deviations (with --rate)")
    p.add_argument("--ops", default="1", help=f"fan-outs to send (1-{OPS_MAX}; default 1)")
    explicit = p.add_argument_group("outside the sandbox (raw writers only; warned, delivery not checked)")
    explicit.add_argument(
        "--iface", default=None, metavar="NAME", help="send on this interface of the current namespace"
    )
    explicit.add_argument("--src-ip", default=None, help="source IPv4 or IPv6 address (with --iface)")
    explicit.add_argument("--dst-ip", default=None, help="destination IPv4 or IPv6 address (with --iface)")
    explicit.add_argument("--dst-mac", default=None, help="destination MAC (with --iface)")
    explicit.add_argument(
        "--first-port", default=str(FIRST_PORT), help=f"first destination port (with --iface; default {FIRST_PORT})"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check every option, then send in a sandbox (or, with --iface, on the named interface)."""
    require(
        args.iface is None or args.tx_iface is None, "--iface sends unchecked; --tx-iface/--rx-iface read too: give one"
    )
    config = make_config(writers=args.writer, per_op_pacing=True, **config_kwargs(args))
    ops = parse_int("ops", args.ops, 1, OPS_MAX)
    if args.hdr_dir is not None:
        require(config.pace is not None, f"--hdr {args.hdr_dir!r} records paced gaps; give --rate too")
        require(args.iface is None, "--hdr records what the readers saw; --iface has no readers")
        outputs.check_dir("--hdr", args.hdr_dir)
    options = WriterOptions(message_size=config.size, fit=config.fit, pcap=args.pcap, allow_iface=args.iface)
    if args.iface is not None:
        require(config.shape is None, "--sizes and --vary shape a checked stream; drop them with --iface")
        caps.require("send --iface", caps.RAW, "send")
        return _send_outside(args, config.writers[0], config.readers[0], ops, options, config.payload)
    require(
        all(a is None for a in (args.src_ip, args.dst_ip, args.dst_mac)),
        "--src-ip, --dst-ip and --dst-mac go with --iface; in the sandbox they come from the kernel",
    )
    caps.require("send", caps.EVERYTHING, "send")
    return _send_in_sandbox(config.writers[0], config.readers[0], ops, options, config, args.hdr_dir)


def _send_in_sandbox(
    name: str, count: int, ops: int, options: WriterOptions, config: Config, hdr_dir: str | None = None
) -> int:
    with rig.sandbox(config) as topo, rig.readers(config, topo, count) as readers:
        writer = rig.open_writer(
            config, topo, readers, get(name), dataclasses.replace(options, allow_iface=topo.allow_iface)
        )
        target = writer.target
        source = rig.source(config, readers)
        where = (
            f"{target.src_ip} -> {target.dst_ip}" if not isinstance(readers, RemoteReaderSet) else remote_line(readers)
        )
        print(
            f"send: {name}, {count} readers on {topo.kind} ({where}, ports "
            f"{readers.ports[0]}-{readers.ports[-1]}), MTU {target.link.mtu}, {config.size}-byte "
            f"{source.name} messages, fit {options.fit.value}"
            + ("" if topo.vlan is None else f", VLAN {topo.vlan} priority {config.vlan_priority}")
        )
        before = diagnose.snapshot_of(topo)
        lost = 0
        gaps: list[tuple[str, float]] = []
        if config.shape is not None:
            with writer:
                return _send_shaped(writer, readers, source, config, ops, before, topo)
        with writer:
            pace = None if config.pace is None else paced(config.pace, writer)
            loop = OpLoop(writer, readers, source, ASAP if pace is None else pace.pacer, timestamps=pace is not None)
            try:
                for op in range(1, ops + 1):
                    result = loop.fanout().result
                    lost += result.counts.lost + result.counts.corrupt
                    pacing = "" if pace is None else f"; {_pacing_line(pace, result, gaps)}"
                    if ops <= 10 or not result.ok:
                        print(f"op {op}: {result.describe()}{pacing}")
            except ReaderDied:  # a remote agent or its link went away: say what was delivered until then
                done = readers.tally
                print(
                    f"before the readers went away: {done.ops} ops, {done.counts.delivered} of {done.sent} delivered, {done.counts.intact} intact"
                )
                raise
        tally = readers.tally
        saved = True
        print(
            f"{tally.counts.delivered} of {tally.sent} datagrams delivered, {tally.counts.intact} intact "
            f"({writer.delivered_size} bytes each, {writer.trimmed_bytes} cut per message)"
        )
        if topo.vlan_filter is not None and topo.vlan_filter.counts().other_vlan:
            print(f"VLAN {topo.vlan}: {topo.vlan_filter.counts().describe()}")
        if isinstance(readers, RemoteReaderSet):
            for share in readers.describe_hosts():
                print(host_line(share))
        if lost and isinstance(readers, RemoteReaderSet):
            for why in readers.explain(tally.counts.lost):
                print(f"why, on {why}")
            return 1
        if hdr_dir is not None:
            intervals = histograms.consecutive([g for g, _ in gaps], [length for _, length in gaps])
            comment = f"rawpacer send: {name}, {count} readers, gap_dev_ns, one interval per fan-out"
            saved = save_hlogs(hdr_dir, {f"{name}-gap_dev_ns.hlog": histograms.hlog_text(intervals, comment)})
        if lost:
            print(f"why: {diagnose.explain(before, diagnose.snapshot_of(topo), lost=tally.counts.lost)}")
            return 1
    return 0 if saved else 1


def _send_shaped(
    writer: Writer,
    readers: AnyReaders,
    source: MessageSource,
    config: Config,
    ops: int,
    before: Counters,
    topo: Topology,
) -> int:
    """``ops`` fan-outs' worth of datagrams as one shaped stream of the writer's frame pool (``--sizes``,
    ``--vary``): what the readers got, per size."""
    pace = (
        None
        if config.pace is None
        else paced(config.pace, writer, None if config.shape is None else config.shape.sizes)
    )
    shape = shaped(config, writer, readers, source)
    assert shape is not None
    loop = OpLoop(writer, readers, source, ASAP if pace is None else pace.pacer, shape=shape)
    outcome = loop.shaped_stream(ops * len(readers.ports))
    result = outcome.result
    print(
        f"shaped stream: {outcome.sent} datagrams from a pool of {len(shape.pool)} frames"
        f"{'' if shape.pool.whole else ' (repeating)'}: {result.counts.delivered} delivered, {result.counts.intact} intact"
    )
    if outcome.sizes:
        print(f"per size: {describe_sizes(outcome.sizes)}")
    if result.counts.lost or result.counts.corrupt:
        print(f"why: {diagnose.explain(before, diagnose.snapshot_of(topo), lost=result.counts.lost)}")
        return 1
    return 0


def _pacing_line(pace: Paced, result: OpResult, gaps: list[tuple[str, float]]) -> str:
    """How one paced fan-out left, from its kernel receive timestamps: rate achieved, gap p99. Its gap
    deviations are appended to ``gaps`` as an HdrHistogram with the fan-out's length (s)."""
    rx = result.arrivals.in_arrival_order().rx_ns if result.arrivals is not None else np.zeros(0, np.int64)
    spec = pace.spec
    figures = stream_stats(rx, rate_pps=pace.rate_pps, burst=spec.burst, pattern=spec.pattern, seed=spec.seed)
    departures = rx[:: spec.burst]
    gaps.append(
        (
            histograms.encode(np.abs(np.diff(departures) - figures["gap_ideal_ns"])),
            float(departures[-1] - departures[0]) / 1e9 if departures.size else 0.0,
        )
    )
    achieved, p99 = figures["rate_achieved_pps"], figures["gap_dev_ns"]["p99"]
    if achieved is None:
        return f"paced at {pace.rate_pps:,.0f}/s (too few datagrams to measure)"
    return f"paced at {achieved:,.0f} of {pace.rate_pps:,.0f} datagrams/s, gap deviation p99 {p99 / 1e3:.1f} µs"


def _send_outside(
    args: argparse.Namespace, name: str, count: int, ops: int, options: WriterOptions, payload: str
) -> int:
    cls = get(name)
    require(cls.raw, f"--iface is for raw writers; {name!r} goes through the kernel's routing")
    for option, value in (("--src-ip", args.src_ip), ("--dst-ip", args.dst_ip), ("--dst-mac", args.dst_mac)):
        require(value is not None, f"--iface needs {option}: nothing is assumed outside the sandbox")
    parse_ip("src_ip", args.src_ip)
    parse_ip("dst_ip", args.dst_ip)
    parse_mac("dst_mac", args.dst_mac)
    first = parse_int("first port", args.first_port, 1, MAX_PORT)
    require(first + count - 1 <= MAX_PORT, f"first port {first} with {count} readers does not fit in 1-{MAX_PORT}")
    index, mtu, mac = link_info(args.iface)
    ports = tuple(range(first, first + count))
    target = Target(args.src_ip, args.dst_ip, ports, Link(args.iface, index, mtu, mac, args.dst_mac))
    writer = cls(target, options)  # warns, naming the interface (the CLI prints it at once)
    source = MessageSource.make(payload, options.message_size)
    buffer = bytearray(count * options.message_size)
    view = memoryview(buffer)
    messages = [view[i * options.message_size : (i + 1) * options.message_size] for i in range(count)]
    sent = 0
    with writer:
        for _ in range(ops):
            source.fill(buffer)
            sent += depart(writer, messages, ASAP, count, fresh=count)
    print(
        f"sent {sent} datagrams with {name} on {args.iface} to {args.dst_ip} ports {ports[0]}-{ports[-1]}; "
        "delivery not checked (no rawpacer readers there)"
    )
    return 0
