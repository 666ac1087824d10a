"""Stream throughput of ``xdp`` and ``packet-ring`` next to trafgen (netsniff-ng) sending the same frames.

Run (root): .venv/bin/python benchmarks/trafgen_bench.py [--fanouts 2000] [--rounds 5] [--readers 100]
[--writers xdp,packet-ring]

One lo sandbox, 100 kernel UDP readers. Each round runs every Python writer in stream mode
(fan-outs back to back: the first stamped, the rest replayed with ``resend``; delivery counted at
the end) and trafgen with the same 1514-byte frames to the same 100 ports (its config built with
FrameTemplate as the raw writers build theirs, run inside the writer namespace by ``ip netns exec``), the order
rotating from round to round; the figures are medians over the rounds. trafgen runs on one CPU
(``-P 1``, like the one Python thread, which is pinned to the same CPU), touches neither socket
memory sysctls nor IRQ affinity (``--no-sock-mem --notouch-irq``), and bypasses the qdisc like
packet-ring (PACKET_QDISC_BYPASS) and xdp (AF_XDP transmits with ``__dev_direct_xmit``) do. Its
time is the send loop it reports itself (process start-up and config compilation excluded); a
Python writer's is the wall time of its send loop.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from rawpacer.errors import RawpacerError
from rawpacer.headers import FrameTemplate
from rawpacer.host import describe
from rawpacer.messages import MessageSource
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.writers import Target, Writer, WriterOptions, get
from rawpacer.writers.xdp import XdpWriter

FRAME = 1514
PAYLOAD = FRAME - 42


def trafgen_config(frames: list[bytes]) -> str:
    """A trafgen packet config: one ``{ 0x.., ... }`` block per frame, sent round robin."""
    return "".join("{ " + ", ".join(f"0x{b:02x}" for b in frame) + " }\n" for frame in frames)


def run_trafgen(topo: Topology, config: str, count: int) -> float:
    """Send ``count`` frames with trafgen in the writer namespace; return its reported send time (s)."""
    command = [
        "ip",
        "netns",
        "exec",
        topo.writer_ns,
        "trafgen",
        "--dev",
        topo.writer_if,
        "--conf",
        config,
        "--num",
        str(count),
        "-P",
        "1",
        "--no-sock-mem",
        "--notouch-irq",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"(\d+) sec, (\d+) usec on CPU\d+ \((\d+) packets\)", done.stdout)
    if done.returncode != 0 or not found:
        raise RawpacerError(f"trafgen failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")
    if int(found.group(3)) != count:
        raise RawpacerError(f"trafgen sent {found.group(3)} frames, not {count}")
    return int(found.group(1)) + int(found.group(2)) / 1e6


def frames(target: Target, messages: list[memoryview]) -> list[bytes]:
    """Each reader's frame for ``messages``, built as the raw writers build theirs (FrameTemplate)."""
    link = target.link
    fields = {"sport": target.sport, "src_ip": target.src_ip, "dst_ip": target.dst_ip}
    return [
        FrameTemplate(port, src_mac=link.src_mac, dst_mac=link.dst_mac, **fields).stamp(message)
        for port, message in zip(target.ports, messages)
    ]


def stream(writer: Writer, messages: list[memoryview], fanouts: int) -> float:
    """Send ``fanouts`` fan-outs back to back (the first built, the rest replayed like trafgen's) on CPU 0 (where ``trafgen -P 1`` runs); return the wall time (s)."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        start = time.perf_counter()
        writer.send(messages)
        for _ in range(fanouts - 1):
            writer.resend(messages)
        return time.perf_counter() - start
    finally:
        os.sched_setaffinity(0, allowed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fanouts", type=int, default=2000, help="fan-outs per run (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the order rotating (default 5)")
    parser.add_argument("--readers", type=int, default=100, help="readers / ports (default 100)")
    parser.add_argument(
        "--writers", default="xdp,packet-ring", help="Python writers beside trafgen (default xdp,packet-ring)"
    )
    args = parser.parse_args(argv)
    if shutil.which("trafgen") is None:
        print("trafgen not found: apt-get install netsniff-ng", file=sys.stderr)
        return 2
    names = [get(n).name for n in args.writers.split(",")]
    runners = [*names, "trafgen"]
    rates: dict[str, list[float]] = {who: [] for who in runners}
    delivered: dict[str, list[int]] = {who: [] for who in runners}
    total = args.fanouts * args.readers
    notes = {}
    with (
        Sandbox("lo") as topo,
        ReaderSet(topo, args.readers, PAYLOAD) as readers,
        tempfile.TemporaryDirectory() as tmp,
        contextlib.ExitStack() as opened,
    ):
        MessageSource.make("crypto", PAYLOAD).fill(readers.buffer)
        messages = list(readers.messages)
        writers: dict[str, Writer] = {}
        with topo.enter("writer"):
            for name in names:
                writer = get(name)(topo.target(readers.ports), WriterOptions(message_size=PAYLOAD))
                writers[name] = opened.enter_context(writer)
        config = os.path.join(tmp, "frames.cfg")
        with open(config, "w") as handle:
            handle.write(trafgen_config(frames(topo.target(readers.ports), messages)))
        for round_no in range(args.rounds):
            shift = round_no % len(runners)
            for who in runners[shift:] + runners[:shift]:
                readers.begin_stream(PAYLOAD)
                if who == "trafgen":
                    seconds = run_trafgen(topo, config, total)
                else:
                    seconds = stream(writers[who], messages, args.fanouts)
                result = readers.end_stream(args.fanouts)
                rates[who].append(total / seconds)
                delivered[who].append(result.counts.delivered)
                print(
                    f"round {round_no + 1} {who:<11} {total / seconds:>10,.0f} frames/s  "
                    f"delivered {result.counts.delivered}/{total}",
                    flush=True,
                )
        xdp = writers.get("xdp")
        if isinstance(xdp, XdpWriter):
            stats = xdp.statistics()
            notes["xdp"] = (
                f"mode {xdp.mode}, tx_budget {xdp.tx_budget}, "
                f"{stats['kicks'] / (args.fanouts * args.rounds):.2f} kicks per fan-out, "
                f"tx_invalid_descs {stats['tx_invalid_descs']}, dropped {stats['dropped']}"
            )
    machine = describe()
    print(
        f"\nmachine: {machine['cpu']}, {machine['cores']} cores, kernel {machine['kernel']}, Python {machine['python']}"
    )
    print(
        f"{total} frames of {FRAME} bytes per run ({args.fanouts} fan-outs x {args.readers} ports on lo), "
        f"median of {args.rounds} rounds:"
    )
    trafgen = statistics.median(rates["trafgen"])
    for who, runs in rates.items():
        line = (
            f"  {who:<11} {statistics.median(runs):>10,.0f} frames/s   delivered (median) "
            f"{statistics.median(delivered[who]):,.0f}/{total}"
        )
        if who != "trafgen":
            paired = statistics.median(r / t for r, t in zip(runs, rates["trafgen"]))
            line += f"   / trafgen = {statistics.median(runs) / trafgen:.2f} (per-round median {paired:.2f})"
        print(line + (f"   [{notes[who]}]" if who in notes else ""))
    print("  targets: xdp >= 1.0 x trafgen, packet-ring >= 0.9 x trafgen")
    return 0


if __name__ == "__main__":
    sys.exit(main())
