"""rawpacer's pacer next to its peers (sockperf, iperf3, trafgen), each sending into one reader that
takes the kernel's receive timestamp of every datagram: the harness of ``benchmarks/pacing_bench.py``
and notebook 04 (docs/pacing.md).

One lo sandbox; on lo the kernel stamps a datagram as the sender hands it over, so the stamps show
departures. ``PeerBench.run(tool, rate, count)`` sends with one tool and returns the stamps. The
tools: rawpacer's pacer driving a UDP socket (``udp-sendto``) or an AF_PACKET socket sending one
FrameTemplate frame (``packet-raw``), each one of ``WAYS``; ``sockperf throughput --mps``;
``iperf3 -u -b`` (its server owns the port, so an AF_PACKET socket on lo stamps instead: the kernel
stamps a packet once, before any socket sees it); ``trafgen --rate`` and ``trafgen --gap``.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rawpacer import engine
from rawpacer.errors import RawpacerError
from rawpacer.headers import FrameTemplate
from rawpacer.pacing import ConstantSchedule, Pacer, rxstamp
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.target import Target
from rawpacer.writers import WriterOptions, get
from rawpacer.writers._packet_socket import open_packet_socket

PORT = 5201
"""The reader's UDP port (iperf3's default)."""
ETH_P_ALL = 0x0003
PACKET_HOST = 0
"""packet(7): every protocol; a frame addressed to this host."""
WAYS = ("py-spin", "c-wait", "c-loop", "c-full", "c-burst", "c-fixed")
"""How rawpacer paces: the Python loop on the Python pacer, the Python loop on the C pacer (one call
per departure), the whole loop in C (the transmit engine's sendmmsg back end, paced by the C core),
and the C loop spinning only, spinning only and catching up in bursts (sockperf's two rules), or
with a fixed margin."""
RING_WAYS = ("engine", "engine-full", "engine-burst", "py-loop")
"""The batch writers, four ways: ``engine`` (the writer's frames through the transmit engine, paced by
the pacer's C core: ``Writer.replay_frames``), ``engine-full`` (the same, spinning only: ``--spin
full``), ``engine-burst`` (spinning only and catching up back to back: ``--catch-up burst``,
sockperf's way) and ``py-loop`` (a Python loop: the C pacer's wait, then ``resend``, the op loop's
way before the engine); only ``engine`` is in the default set, name the others."""
RING_TOOLS = [f"{writer}/{way}" for writer in ("udp-sendmmsg", "packet-ring", "xdp") for way in RING_WAYS]
PACER_TOOLS = [f"{writer}/{way}" for writer in ("udp-sendto", "packet-raw") for way in WAYS]
PACER_TOOLS += [t for t in RING_TOOLS if t.endswith("/engine")]
SOCKPERFS_RULES: dict[str, Any] = {"spin": "full", "catch_up": math.inf}
"""sockperf's pacing: spin to each deadline, and send what is due back to back when late."""
PACER_ARGS: dict[str, dict[str, Any]] = {
    "c-full": {"spin": "full"},
    "engine-full": {"spin": "full"},
    "c-burst": SOCKPERFS_RULES,
    "engine-burst": SOCKPERFS_RULES,
    "c-fixed": {"spin_ns": 5_000_000},
}
"""How each way's pacer waits and catches up: adaptive and 1.25x (the defaults) unless named here."""
PEER_BINARY = {"sockperf": "sockperf", "iperf3": "iperf3", "trafgen-rate": "trafgen", "trafgen-gap": "trafgen"}
"""Each peer tool and the program it needs."""
PEERS = list(PEER_BINARY)


def _paced_stream(
    pacer: Pacer,
    sock: socket.socket,
    frames: list[bytes],
    addresses: list[tuple[str, int]] | None,
    loop: Literal["c", "python"],
    count: int,
) -> None:
    """``count`` datagrams of ``frames`` (to ``addresses``, or on the bound socket) on ``pacer``: the
    engine's loop in C paced by the pacer's core (``loop="c"``), or a Python loop of ``pacer.wait``
    and one send each."""
    if loop == "c":
        sockaddrs = None if addresses is None else engine.addressed(addresses)
        engine.paced(engine.Frames(engine.mmsg(sock.fileno()), engine.pool(frames, sockaddrs), 1), pacer, count)
        return
    wait, n = pacer.wait, len(frames)
    for k in range(count):
        wait(k)
        if addresses is None:
            sock.send(frames[k % n])
        else:
            sock.sendto(frames[k % n], addresses[k % n])


def available(tools: list[str]) -> list[str]:
    """The tools this machine can run: rawpacer's, and the peers whose program is installed."""
    ours = {*PACER_TOOLS, *RING_TOOLS}
    return [t for t in tools if t in ours or (t in PEER_BINARY and shutil.which(PEER_BINARY[t]))]


class PeerBench:
    """One sandbox, one timestamping reader, and a way to run every tool into it."""

    def __init__(self, topo: Topology, size: int, tmp: str) -> None:
        self.topo = topo
        self.size = size
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
        """Close the reader."""
        self.reader.close()

    def run(self, tool: str, rate: int, count: int) -> tuple[npt.NDArray[np.int64], dict[str, Any]]:
        """Send ``count`` datagrams (at least) with ``tool`` at ``rate``; their RX timestamps and extras
        (``pacer``: rawpacer's pacer report)."""
        self.drain()
        if tool == "iperf3":
            return self.run_iperf3(rate, count), {}
        extra: dict[str, Any] = {}
        if tool in RING_TOOLS:
            extra = self.run_ring_writer(tool, rate, count)
        elif tool in PACER_TOOLS:
            extra = self.run_rawpacer(tool, rate, count)
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
        """rawpacer's pacer, one of ``WAYS``, on a fresh socket warmed by two unmeasured datagrams."""
        writer, way = tool.split("/")
        core: Literal["c", "python"] = "python" if way == "py-spin" else "c"
        loop: Literal["c", "python"] = "python" if way in ("py-spin", "c-wait") else "c"
        spin = PACER_ARGS.get(way, {})
        frames: list[bytes]
        addresses: list[tuple[str, int]] | None
        with self.topo.enter("writer"):
            if writer == "udp-sendto":
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                frames, addresses = [self.payload], [(self.topo.reader_ip, PORT)]
            else:
                sock = open_packet_socket(self.topo.writer_if)
                frames, addresses = [self.frame], None
        with sock:
            # Two unmeasured datagrams first, the same way: a fresh socket's first sends are slower
            # (sockperf warms up before its test too).
            warm = Pacer(ConstantSchedule(rate), implementation=core, **spin)
            _paced_stream(warm, sock, frames, addresses, loop, 2)
            self.drain()
            pacer = Pacer(ConstantSchedule(rate), implementation=core, **spin)
            _paced_stream(pacer, sock, frames, addresses, loop, count)
        return {"pacer": pacer.report()}

    def run_ring_writer(self, tool: str, rate: int, count: int) -> dict[str, Any]:
        """A batch writer at burst 1, one of ``RING_WAYS``, after one unmeasured datagram."""
        name, way = tool.split("/")
        target = Target(self.topo.writer_ip, self.topo.reader_ip, (PORT,), self.topo.link())
        messages = [self.payload]
        with self.topo.enter("writer"):
            writer = get(name)(target, WriterOptions(message_size=self.size))
        with writer:
            writer.send(messages)
            self.drain()
            pacer = Pacer(ConstantSchedule(rate), **PACER_ARGS.get(way, {}))
            pacer.start()
            frames = writer.replay_frames(messages) if way.startswith("engine") else None
            if frames is not None:
                engine.paced(frames, pacer, count)
            else:
                wait, resend = pacer.wait, writer.resend
                for i in range(count):
                    wait(i)
                    resend(messages)
        return {"pacer": pacer.report()}

    def run_sockperf(self, rate: int, count: int) -> None:
        """sockperf's throughput test at ``--mps rate`` for as many whole seconds as ``count`` needs."""
        seconds = max(1, -(-count // rate))
        command = ["sockperf", "throughput", "-i", self.topo.reader_ip, "-p", str(PORT)]
        command += ["--mps", str(rate), "-m", str(self.size), "-t", str(seconds)]
        self.exec_in_writer(command)

    def run_trafgen(self, tool: str, rate: int, count: int) -> None:
        """trafgen on one CPU, paced by ``--rate`` or by ``--gap``."""
        pace = ["--rate", f"{rate}pps"] if tool == "trafgen-rate" else ["--gap", f"{1_000_000_000 // rate}ns"]
        command = ["trafgen", "--dev", self.topo.writer_if, "--conf", self.trafgen_conf, "--num", str(count)]
        command += [*pace, "-P", "1", "--no-sock-mem", "--notouch-irq"]
        self.exec_in_writer(command)

    def run_iperf3(self, rate: int, count: int) -> npt.NDArray[np.int64]:
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
            data[23] == socket.IPPROTO_UDP
            and int.from_bytes(data[udp + 2 : udp + 4], "big") == PORT
            and len(data) - udp - 8 == self.size
        )

    def exec_in_writer(self, command: list[str], retries: int = 0) -> None:
        """Run a peer in the writer namespace; RawpacerError with its last words if it fails."""
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


@contextmanager
def peer_bench(size: int) -> Iterator[PeerBench]:
    """A PeerBench sending ``size``-byte payloads in a fresh lo sandbox, removed on every exit."""
    with Sandbox("lo") as topo, tempfile.TemporaryDirectory() as tmp:
        bench = PeerBench(topo, size, tmp)
        try:
            yield bench
        finally:
            bench.close()
