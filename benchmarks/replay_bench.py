"""rawpacer's replay next to tcpreplay, on the same files and the same veth sandbox, by kernel RX timestamps.

Run (root): .venv/bin/python benchmarks/replay_bench.py [--drift-frames 1000000] [--drift-rate 100000]
            [--frames 50000] [--only rate,captured,topspeed,drift] [--rounds 3]

Every case runs ``--rounds`` times, the tools taking turns (the first one rotating), and the table
shows each figure's median over the rounds (each round is printed as it ends).

One veth sandbox (rpw0 -> rpr0). The files are written for it (its MACs, addresses and one reader
port), so both tools send them exactly as they are: tcpreplay inside the writer namespace
(``ip netns exec NS tcpreplay -i rpw0``), rawpacer through the replay engine (``send_plan``) with a
packet-raw writer (and packet-ring at top speed). The readers' process (``ReplayReaders``) records
every datagram's kernel receive time in the reader namespace. Cases:

- ``rate``: 64-byte frames at 10k and 100k pps (tcpreplay ``--pps``): the rate error;
- ``captured``: exponential gaps, mean 100 µs (seeded): |gap deviation| from the captured gaps,
  p50/p99/max (tcpreplay's default timing, rawpacer's ``captured``);
- ``captured`` runs rawpacer twice: as it is by default (a late pacer catches up at most 1.25x, so a
  stall shortens several gaps a little) and with ``--catch-up burst`` (what is due leaves back to
  back, as tcpreplay does, so a stall spoils fewer gaps; ``rawpacer/packet-raw+burst``);
- ``topspeed``: 1518-byte frames (tcpreplay ``--topspeed``): frames/s, the readers' interface count over
  the span of the receive stamps. ``+cpu`` is rawpacer's ``--cpu`` on the highest CPU (the sender
  alone there; planning and the readers' process on the other), and ``tcpreplay+cpu`` tcpreplay
  under ``taskset`` on that CPU with the readers off it, so pinning is compared with pinning.
  ``trafgen`` (netsniff-ng, one CPU, qdisc bypassed) sends the file's first frame as many times from
  its TX ring, reading no file and planning nothing;
- ``drift``: ``--drift-frames`` frames at ``--drift-rate`` (100k pps): the last arrival against where
  the schedule puts it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rawpacer.bench.replay import file_source, send_plan
from rawpacer.bench.replayplan import Plan, Timing, scan
from rawpacer.headers import FrameTemplate
from rawpacer.host import describe
from rawpacer.host.placement import parse_cpu
from rawpacer.kernel.linkstats import link_stats
from rawpacer.pacing.fed import schedule_stats
from rawpacer.readers.replay import Received, ReplayReaders
from rawpacer.readers.replaymatch import datagram_hash
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.traffic.capture import read_capture
from rawpacer.writers import WriterOptions, get

EPOCH_NS = 1_700_000_000 * 10**9
SEED = 2112
CASES = ("rate", "captured", "topspeed", "drift")
SENDER_CPU = max(os.sched_getaffinity(0))
"""The CPU of ``--cpu`` at top speed (the highest: CPU 0 takes more of the host's interrupts)."""


def write_capture(path: Path, frames: Callable[[int], bytes], offsets: np.ndarray) -> None:
    """A nanosecond pcap: frame i (``frames(i)``) at ``offsets[i]``."""
    with open(path, "wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for i, offset in enumerate(offsets.tolist()):
            frame = frames(i)
            seconds, ns = divmod(EPOCH_NS + offset, 10**9)
            handle.write(struct.pack("<IIII", seconds, ns, len(frame), len(frame)) + frame)


def framer(template: FrameTemplate, payload: int) -> Callable[[int], bytes]:
    """Frame i: ``payload`` bytes starting with i."""
    pad = bytes(max(0, payload - 8))
    return lambda i: template.stamp(struct.pack("!Q", i)[: min(8, payload)] + pad)


def payload_of(i: int, payload: int) -> bytes:
    return struct.pack("!Q", i)[: min(8, payload)] + bytes(max(0, payload - 8))


def rx_packets(topo: Topology) -> int:
    with topo.enter("reader"):
        return link_stats()[topo.reader_if]["rx_packets"]


def run_tool(
    topo: Topology, tool: str, path: Path, timing: Timing, extra: list[str], limit: int | None
) -> tuple[Received, int]:
    """One replay of ``path`` by ``tool`` (tcpreplay, or rawpacer/WRITER): what arrived, and the
    readers' interface count of it."""
    with ReplayReaders(topo, 1, rcvbuf=256 << 20) as readers:
        before = rx_packets(topo)
        if tool == "trafgen":
            trafgen(topo, path, limit)
        elif tool.startswith("tcpreplay"):
            limits = [] if limit is None else ["--limit", str(limit)]
            command = ["ip", "netns", "exec", topo.writer_ns, "tcpreplay", "-q", "-i", topo.writer_if, *extra, *limits]
            if tool == "tcpreplay+cpu":  # taskset on the CPU rawpacer's --cpu takes, its readers off it
                command[4:4] = ["taskset", "-c", str(SENDER_CPU)]
                os.sched_setaffinity(readers.pid, os.sched_getaffinity(0) - {SENDER_CPU})
            command.append(str(path))
            subprocess.run(command, check=True, capture_output=True, timeout=600)
        else:
            target = topo.target(readers.ports)
            name, _, variant = tool.split("/")[1].partition("+")
            if variant == "burst":
                timing = dataclasses.replace(timing, catch_up=math.inf)
            placement = parse_cpu(SENDER_CPU) if variant == "cpu" else None
            if placement is not None:
                placement.elsewhere(readers.pid)
            with topo.enter("writer"):
                writer = get(name)(target, WriterOptions(message_size=1472))
            source = file_source(path)
            found = scan(source, target.link.mtu, "trim", limit)
            plan = Plan(source, found, timing, mtu=target.link.mtu, fit="trim", limit=limit)
            with writer:
                send_plan(writer, plan, timing, placement)
        received = readers.collect(0.5)
        return received, rx_packets(topo) - before


def trafgen(topo: Topology, path: Path, limit: int | None) -> None:
    """trafgen sending ``path``'s first frame once per record (or ``limit`` times) on one CPU from
    its TX ring, qdisc bypassed, touching no host setting."""
    first = next(read_capture(path)).data
    conf = path.with_suffix(".trafgen")
    conf.write_text("{ " + ", ".join(f"0x{b:02x}" for b in first) + " }\n")
    count = sum(1 for _ in read_capture(path)) if limit is None else limit
    command = ["ip", "netns", "exec", topo.writer_ns, "trafgen", "--dev", topo.writer_if, "--conf", str(conf)]
    command += ["--num", str(count), "-P", "1", "--no-sock-mem", "--notouch-irq"]
    subprocess.run(command, check=True, capture_output=True, timeout=600)


def figures(received: Received, count: int, due: dict[int, int] | None, target_pps: float | None) -> dict[str, Any]:
    """Rate, its error, gap deviation against the file's schedule (when ``due`` maps hashes to
    offsets), end vs schedule, frames/s by the interface count."""
    rx = received.rx_ns
    span = int(rx[-1] - rx[0]) if rx.size >= 2 else 0
    out: dict[str, Any] = {"received": int(rx.size), "interface": count}
    out["frames_per_s"] = (count - 1) * 1e9 / span if span else None
    out["rate_pps"] = (rx.size - 1) * 1e9 / span if span else None
    if target_pps and out["rate_pps"]:
        out["rate_error"] = out["rate_pps"] / target_pps - 1
        out["end_vs_schedule_us"] = (span - (rx.size - 1) * 1e9 / target_pps) / 1e3
    if due is not None:
        keep = [(int(r), due[int(h)]) for r, h in zip(rx, received.digest) if int(h) in due]
        stats = schedule_stats([r for r, _ in keep], [d for _, d in keep])
        out["gap_dev_us"] = {k: (v or 0) / 1e3 for k, v in stats["gap_dev_ns"].items()}
    return out


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (nested dicts key by key; None when a round had none)."""
    out: dict[str, Any] = {}
    for key, first in rounds[0].items():
        values = [r.get(key) for r in rounds]
        if isinstance(first, dict):
            out[key] = median_of(values)
        elif all(isinstance(v, (int, float)) for v in values):
            out[key] = float(np.median(values))
        else:
            out[key] = None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50_000, help="frames of the rate, captured and topspeed files")
    parser.add_argument("--drift-frames", type=int, default=1_000_000)
    parser.add_argument("--drift-rate", type=int, default=100_000, help="packets/s of the drift case")
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of every case, the tools alternating; medians shown"
    )
    args = parser.parse_args()
    if shutil.which("tcpreplay") is None:
        print("tcpreplay is not installed (Debian: apt-get install tcpreplay)")
        return 1
    chosen = args.only.split(",")
    print(describe())
    work = Path(tempfile.mkdtemp(prefix="rawpacer-replay-bench-"))
    rng = np.random.default_rng(SEED)
    try:
        with Sandbox("veth") as topo:
            link = topo.link()
            template = FrameTemplate(
                5001, src_ip=topo.writer_ip, dst_ip=topo.reader_ip, src_mac=link.src_mac, dst_mac=link.dst_mac
            )
            rows: list[tuple[str, str, dict[str, Any]]] = []

            def both(case, path, timing, extra, due=None, pps=None, tools=None, limit=None):
                tools = list(tools or ("tcpreplay", "rawpacer/packet-raw"))
                runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
                for r in range(args.rounds):  # the tools take turns, the first one rotating each round
                    for tool in tools[r % len(tools) :] + tools[: r % len(tools)]:
                        got, count = run_tool(topo, tool, path, timing, extra, limit)
                        runs[tool].append(figures(got, count, due, pps))
                        print(case, tool, f"round {r + 1}", runs[tool][-1], flush=True)
                rows.extend((case, tool, median_of(runs[tool])) for tool in tools)

            n = args.frames
            if "rate" in chosen:
                path = work / "rate.pcap"
                write_capture(path, framer(template, 18), np.arange(n, dtype=np.int64) * 1000)
                for pps in (10_000, 100_000):
                    count = n if pps == 100_000 else n // 5
                    timing = Timing.parse(rate=str(pps))
                    both(f"rate {pps // 1000}k", path, timing, ["--pps", str(pps)], pps=pps, limit=count)
            if "captured" in chosen:
                path = work / "captured.pcap"
                count = n // 2
                offsets = np.concatenate([[0], np.cumsum(np.rint(rng.exponential(100_000, count - 1)))]).astype(
                    np.int64
                )
                write_capture(path, framer(template, 100), offsets)
                due = {datagram_hash(payload_of(i, 100)): int(o) for i, o in enumerate(offsets.tolist())}
                tools = ("tcpreplay", "rawpacer/packet-raw", "rawpacer/packet-raw+burst")
                both("captured exp 100us", path, Timing("captured"), [], due=due, tools=tools)
            if "topspeed" in chosen:
                path = work / "big.pcap"
                write_capture(path, framer(template, 1472), np.arange(n, dtype=np.int64))
                both(
                    "topspeed 1518 B",
                    path,
                    Timing("topspeed"),
                    ["--topspeed"],
                    tools=(
                        "tcpreplay",
                        "tcpreplay+cpu",
                        *(f"rawpacer/{w}{pin}" for w in ("packet-raw", "packet-ring", "xdp") for pin in ("", "+cpu")),
                    )
                    + (("trafgen",) if shutil.which("trafgen") else ()),
                )
            if "drift" in chosen:
                path = work / "drift.pcap"
                write_capture(path, framer(template, 18), np.arange(args.drift_frames, dtype=np.int64) * 1000)
                pps = args.drift_rate
                timing = Timing.parse(rate=str(pps))
                both(f"drift {args.drift_frames:,} @{pps:,}", path, timing, ["--pps", str(pps)], pps=pps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        "| case | tool | received | rate (pps) | rate error | |gap dev| p50/p99/max (µs) | frames/s | end vs schedule (µs) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for case, tool, f in rows:
        gap = f.get("gap_dev_us")
        gaps = f"{gap['p50']:.1f} / {gap['p99']:.1f} / {gap['max']:.1f}" if gap else "-"
        err = f"{f['rate_error'] * 100:+.3f} %" if "rate_error" in f else "-"
        end = f"{f['end_vs_schedule_us']:+.0f}" if "end_vs_schedule_us" in f else "-"
        rate = f"{f['rate_pps']:,.0f}" if f["rate_pps"] else "-"
        fps = f"{f['frames_per_s']:,.0f}" if f["frames_per_s"] else "-"
        print(f"| {case} | {tool} | {f['received']:,.0f} | {rate} | {err} | {gaps} | {fps} | {end} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
