"""How precisely rawpacer's pacer spaces datagrams, next to sockperf, iperf3 and trafgen, by kernel RX timestamps.

Run (root): .venv/bin/python bench/pacing_bench.py [--rates 1000,10000,100000] [--count 20000]
            [--rounds 3] [--size 1500] [--tools udp-sendto/c-loop,sockperf,...] [--save runs.npz]

One lo sandbox. Every tool sends datagrams with ``--size`` bytes of payload to one UDP reader
socket that asks the kernel for each datagram's receive time (SO_TIMESTAMPNS) and a buffer large
enough to hold a whole run unread; the reader drains it after each run. On lo the kernel stamps a
datagram as the sender hands it over, so the stamps show departures. Tools, each at every rate,
in an order that rotates each round:

- rawpacer's pacer driving a plain UDP socket (``udp-sendto``) and an AF_PACKET socket sending
  FrameTemplate frames (``packet-raw``), three ways each: ``py-spin`` (the Python loop on the
  pure-Python pacer, spinning in Python), ``c-wait`` (the Python loop on the C pacer: one C call
  per departure, waits with the GIL released) and ``c-loop`` (the whole departure loop, sends
  included, in C: PacedSender), each waiting the default way (sleep, then spin for the adaptive
  margin); and the C loop waiting two other ways: ``c-full`` (``--spin full``: spin only, no
  PAUSE, as sockperf does) and ``c-fixed`` (a fixed 5 ms margin: the pacer's wait before the
  margin adapted). Each socket sends two unmeasured datagrams first, the same way, as sockperf
  warms up before its test;
- ``sockperf throughput --mps`` (C, spins on the TSC to absolute deadlines);
- ``iperf3 -u -b`` (UDP at the equivalent payload bit rate; its server must receive the datagrams
  itself, so they are stamped by an AF_PACKET socket on lo instead, which gets the very same
  receive timestamp: the kernel stamps the packet once, before any socket sees it);
- ``trafgen --rate`` and ``trafgen --gap`` (netsniff-ng; one CPU, the same frame).

A tool that is not installed is left out. The figures are medians over the rounds: achieved rate
((n - 1) / (t_last - t_first)), its error against the target, and the deviation of the gaps from
the ideal gap, |gap - 1/rate|, at p50/p99/p99.9/max. Load on the machine shows in every column.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np

from rawpacer.errors import RawpacerError
from rawpacer.headers import FrameTemplate
from rawpacer.host import describe
from rawpacer.pacing import ConstantSchedule, PacedSender, Pacer, rxstamp, stream_stats
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.target import Target
from rawpacer.writers import WriterOptions, get
from rawpacer.writers._packet_socket import open_packet_socket

PORT = 5201
ETH_P_ALL = 0x0003
PACKET_HOST = 0
WAYS = ("py-spin", "c-wait", "c-loop", "c-full", "c-fixed")
RAWPACER = [f"{writer}/{way}" for writer in ("udp-sendto", "packet-raw") for way in WAYS]
RING_WAYS = ("py-loop", "engine")
RING_TOOLS = [f"{writer}/{way}" for writer in ("packet-ring", "xdp") for way in RING_WAYS]
"""The ring writers, two ways: ``py-loop`` (a Python loop: the C pacer's wait, then ``resend``, the
op loop's way before the transmit engine) and ``engine`` (the writer's frames through the engine,
paced by the pacer's C core: ``Writer.replay_frames``). Not in the default set; name them."""
SPIN: dict[str, dict[str, Any]] = {"c-full": {"spin": "full"}, "c-fixed": {"spin_ns": 5_000_000}}
"""How each way's pacer waits: adaptive (the default) unless named here."""
PEERS = ["sockperf", "iperf3", "trafgen-rate", "trafgen-gap"]
PEER_BINARY = {"sockperf": "sockperf", "iperf3": "iperf3", "trafgen-rate": "trafgen", "trafgen-gap": "trafgen"}


class Bench:
    """One sandbox, one timestamping reader, and a way to run every tool into it."""

    def __init__(self, topo: Topology, size: int, tmp: str) -> None:
        self.topo = topo
        self.size = size
        self.tmp = tmp
        self.payload = os.urandom(size)
        with topo.enter("reader"):
            self.reader = rxstamp.open_reader(topo.reader_ip, PORT)
        link = topo.link()
        self.frame = FrameTemplate(
            PORT, src_ip=topo.writer_ip, dst_ip=topo.reader_ip, src_mac=link.src_mac, dst_mac=link.dst_mac
        ).stamp(self.payload)
        self.trafgen_conf = os.path.join(tmp, "frame.cfg")
        with open(self.trafgen_conf, "w") as handle:
            handle.write("{ " + ", ".join(f"0x{b:02x}" for b in self.frame) + " }\n")

    def close(self) -> None:
        self.reader.close()

    def run(self, tool: str, rate: int, count: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Send ``count`` datagrams (at least) with ``tool`` at ``rate``; their RX timestamps and extras."""
        self.drain()
        if tool == "iperf3":
            return self.run_iperf3(rate, count), {}
        extra: dict[str, Any] = {}
        if tool in RAWPACER:
            extra = self.run_rawpacer(tool, rate, count)
        elif tool in RING_TOOLS:
            extra = self.run_ring_writer(tool, rate, count)
        elif tool == "sockperf":
            self.run_sockperf(rate, count)
        else:
            self.run_trafgen(tool, rate, count)
        return rxstamp.collect(self.reader, count * 2, idle_s=0.5), extra

    def drain(self) -> None:
        """Throw away anything left in the reader (a late peer packet)."""
        self.reader.setblocking(False)
        try:
            while True:
                self.reader.recv(65536)
        except BlockingIOError:
            pass
        finally:
            self.reader.setblocking(True)

    def run_rawpacer(self, tool: str, rate: int, count: int) -> dict[str, Any]:
        writer, way = tool.split("/")
        core: Literal["c", "python"] = "python" if way == "py-spin" else "c"
        loop: Literal["c", "python"] = "python" if way in ("py-spin", "c-wait") else "c"
        spin = SPIN.get(way, {})
        with self.topo.enter("writer"):
            if writer == "udp-sendto":
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                frames, addresses = [self.payload], [(self.topo.reader_ip, PORT)]
            else:
                sock = open_packet_socket(self.topo.writer_if)
                frames, addresses = [self.frame], None
        with sock:
            # Two unmeasured datagrams first, the same way: a fresh socket's first sends are slower.
            warm = Pacer(ConstantSchedule(rate), implementation=core, **spin)
            PacedSender(warm, sock, frames, addresses, loop=loop).send(2)
            self.drain()
            pacer = Pacer(ConstantSchedule(rate), implementation=core, **spin)
            PacedSender(pacer, sock, frames, addresses, loop=loop).send(count)
        return {"pacer": pacer.report()}

    def run_ring_writer(self, tool: str, rate: int, count: int) -> dict[str, Any]:
        name, way = tool.split("/")
        target = Target(self.topo.writer_ip, self.topo.reader_ip, (PORT,), self.topo.link())
        messages = [self.payload]
        with self.topo.enter("writer"):
            writer = get(name)(target, WriterOptions(message_size=self.size))
        with writer:
            writer.send(messages)  # the frame built, and one unmeasured datagram, as the others warm up
            self.drain()
            pacer = Pacer(ConstantSchedule(rate))
            pacer.start()
            if way == "engine":
                frames = writer.replay_frames(messages)
                assert frames is not None
                frames.send(0, count, pacer.core)  # type: ignore[arg-type]  # the C core (implementation "c")
            else:
                wait, resend = pacer.wait, writer.resend
                for i in range(count):
                    wait(i)
                    resend(messages)
        return {"pacer": pacer.report()}

    def run_sockperf(self, rate: int, count: int) -> None:
        seconds = max(1, -(-count // rate))
        command = ["sockperf", "throughput", "-i", self.topo.reader_ip, "-p", str(PORT)]
        command += ["--mps", str(rate), "-m", str(self.size), "-t", str(seconds)]
        self.exec_in_writer(command)

    def run_trafgen(self, tool: str, rate: int, count: int) -> None:
        pace = ["--rate", f"{rate}pps"] if tool == "trafgen-rate" else ["--gap", f"{1_000_000_000 // rate}ns"]
        command = ["trafgen", "--dev", self.topo.writer_if, "--conf", self.trafgen_conf, "--num", str(count)]
        command += [*pace, "-P", "1", "--no-sock-mem", "--notouch-irq"]
        self.exec_in_writer(command)

    def run_iperf3(self, rate: int, count: int) -> np.ndarray:
        """iperf3 into its own server on the reader port; stamped by an AF_PACKET socket on lo."""
        with self.topo.enter("reader"):
            sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            rxstamp.enable(sniffer)
            sniffer.bind((self.topo.reader_if, 0))
        with sniffer:
            self.reader.close()  # iperf3's server needs the port
            ns = ["ip", "netns", "exec", self.topo.reader_ns]
            server = subprocess.Popen(
                [*ns, "iperf3", "-s", "-1", "-B", self.topo.reader_ip, "-p", str(PORT)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                bits = rate * self.size * 8
                command = ["iperf3", "-c", self.topo.reader_ip, "-p", str(PORT), "-u", "-b", str(bits)]
                command += ["-l", str(self.size), "-k", str(count)]
                self.exec_in_writer(command, retries=20)
            finally:
                server.wait(timeout=10)
            with self.topo.enter("reader"):
                self.reader = rxstamp.open_reader(self.topo.reader_ip, PORT)
            return rxstamp.collect(sniffer, count * 2, idle_s=0.5, keep=self.iperf3_datagram)

    def iperf3_datagram(self, data: bytes, address: object) -> bool:
        """An incoming IPv4/UDP frame to the port carrying a full-size payload."""
        if not isinstance(address, tuple) or address[2] != PACKET_HOST or len(data) < 42:
            return False
        udp = 14 + (data[14] & 0x0F) * 4
        return (
            data[23] == 17
            and int.from_bytes(data[udp + 2 : udp + 4], "big") == PORT
            and len(data) - udp - 8 == self.size
        )

    def exec_in_writer(self, command: list[str], retries: int = 0) -> None:
        for attempt in range(retries + 1):
            done = subprocess.run(
                ["ip", "netns", "exec", self.topo.writer_ns, *command], capture_output=True, text=True, check=False
            )
            if done.returncode == 0:
                return
            if attempt < retries:  # iperf3's server may not listen yet
                subprocess.run(["sleep", "0.1"], check=False)
        raise RawpacerError(
            f"{command[0]} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}"
        )


def line(tool: str, rate: int, s: dict[str, Any]) -> str:
    dev = s["gap_dev_ns"]
    if s["rate_achieved_pps"] is None:
        return f"{tool:<22} {rate:>7} pps  {s['datagrams']} datagrams: too few to measure"
    cpu = ""
    if "pacer" in s:
        span = s["datagrams"] / rate * 1e9
        late = s["lateness_ns"]["p99"] / 1e3
        cpu = f"  pacer cpu {s['pacer_cpu_ns'] / span:5.0%} stalls {s['pacer']['stalls']} schedule lateness p99 {late:.1f} us"
    return (
        f"{tool:<22} {rate:>7} pps  n {s['datagrams']:>6}  achieved {s['rate_achieved_pps']:>11,.1f} "
        f"({s['rate_error']:+8.4%})  gap dev p50 {dev['p50'] / 1e3:7.2f} p99 {dev['p99'] / 1e3:8.2f} "
        f"p99.9 {dev['p999'] / 1e3:8.2f} max {dev['max'] / 1e3:9.1f} us  stalls {s['stalls']}{cpu}"
    )


@contextmanager
def bench(size: int) -> Iterator[Bench]:
    with Sandbox("lo") as topo, tempfile.TemporaryDirectory() as tmp:
        b = Bench(topo, size, tmp)
        try:
            yield b
        finally:
            b.close()


def median_of(runs: list[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> float:
    return statistics.median(get(r) for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,10000,100000", help="packets/s, comma-separated")
    parser.add_argument("--count", type=int, default=20_000, help="datagrams per run (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--size", type=int, default=1500, help="UDP payload bytes (default 1500)")
    parser.add_argument("--tools", default=",".join(RAWPACER + PEERS), help="tools to run, comma-separated")
    parser.add_argument("--save", metavar="FILE.npz", help="keep every run's receive timestamps (for gap histograms)")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",")]
    tools = [
        t for t in args.tools.split(",") if t in RAWPACER or t in RING_TOOLS or shutil.which(PEER_BINARY.get(t, t))
    ]
    missing = sorted(set(args.tools.split(",")) - set(tools))
    if missing:
        print(f"left out (not installed or unknown): {', '.join(missing)}", file=sys.stderr)
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    saved: dict[str, np.ndarray] = {}
    with bench(args.size) as b:
        for round_no in range(args.rounds):
            shift = round_no % len(tools)
            order = tools[shift:] + tools[:shift]
            for rate in rates:
                for tool in order:
                    stamps, extra = b.run(tool, rate, args.count)
                    summary = stream_stats(stamps, rate_pps=rate, pacer=extra.get("pacer"))
                    results.setdefault((tool, rate), []).append(summary)
                    saved[f"{tool}|{rate}|{round_no + 1}"] = stamps
                    print(f"round {round_no + 1}  {line(tool, rate, summary)}", flush=True)
    if args.save:
        np.savez_compressed(args.save, **saved)
    machine = describe()
    print(
        f"\nmachine: {machine['cpu']}, {machine['cores']} cores, kernel {machine['kernel']}, Python {machine['python']}"
    )
    with open("/proc/loadavg") as handle:
        print(f"load average now: {' '.join(handle.read().split()[:3])}")
    print(f"medians of {args.rounds} rounds, {args.count}+ datagrams of {args.size} bytes each, lo:")
    print("| tool | rate | achieved pps | error | gap dev p50 µs | p99 µs | p99.9 µs | max µs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for rate in rates:
        for tool in tools:
            runs = [r for r in results.get((tool, rate), []) if r["rate_achieved_pps"] is not None]
            if not runs:
                continue
            med = {
                key: median_of(runs, lambda r, key=key: r["gap_dev_ns"][key]) / 1e3
                for key in ("p50", "p99", "p999", "max")
            }
            achieved = median_of(runs, lambda r: r["rate_achieved_pps"])
            error = median_of(runs, lambda r: r["rate_error"])
            print(
                f"| {tool} | {rate:,} | {achieved:,.1f} | {error:+.4%} | {med['p50']:.2f} | {med['p99']:.2f} | "
                f"{med['p999']:.2f} | {med['max']:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
