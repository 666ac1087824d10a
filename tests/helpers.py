"""What several test modules share: the checkout's root and ways to run rawpacer as a user would."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dpkt

from rawpacer.bench.oploop import OpLoop
from rawpacer.cli import main
from rawpacer.headers import FrameTemplate
from rawpacer.headers.sequence import SEQUENCE_BYTES, sequence_bytes
from rawpacer.messages import MessageSource
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Topology
from rawpacer.writers import Writer, WriterOptions, get, names
from rawpacer.writers.base import Knobs

ROOT = Path(__file__).resolve().parent.parent
"""The checkout: README.md, docs/, notebooks/ and the package live here."""


def child_pids() -> set[int]:
    """PIDs of this process's live children (zombies excluded)."""
    path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    with open(path) as handle:
        pids = {int(p) for p in handle.read().split()}
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().split(") ", 1)[1][0] != "Z":
                    alive.add(pid)
        except FileNotFoundError:
            pass
    return alive


# --- writers, as the registry lists them (adding a writer module adds it to every matrix) ---------

RAW_WRITERS = names(raw=True)
"""Every writer that builds its own headers."""
FAST_RAW_WRITERS = names(raw=True, slow=False)
"""Raw writers quick enough for large matrices (all but the benchtime-capped reference peer)."""
STANDARD_WRITERS = names(raw=False)
"""Writers that go through the kernel's UDP stack."""


def make_writer(topo: Topology, name: str, ports: Sequence[int], knobs: Knobs | None = None, **options: Any) -> Writer:
    """Writer ``name`` opened in the sandbox's writer namespace, aimed at ``ports`` on the readers."""
    with topo.enter("writer"):
        return get(name)(topo.target(ports), WriterOptions(**options), knobs)


def fanouts(
    topo: Topology, name: str, count: int, ops: int, size: int = 1500, knobs: Knobs | None = None, **options: Any
) -> tuple[int, int]:
    """``ops`` fan-outs of fresh crypto messages to ``count`` readers through the one op loop;
    return (delivered size, intact datagrams)."""
    with ReaderSet(topo, count, size) as readers:
        with make_writer(topo, name, readers.ports, knobs, message_size=size, **options) as writer:
            loop = OpLoop(writer, readers, MessageSource.make("crypto", size))
            outcomes = loop.fanouts(ops)
        assert all(o.sent == count for o in outcomes)
        return writer.delivered_size, sum(o.result.counts.intact for o in outcomes)


def run_cli(argv: Sequence[str]) -> tuple[int, str]:
    """``rawpacer ARGV`` in this process, as ``rawpacer.cli.main`` runs it: (exit code, stderr).

    The CLI's process-wide settings (the SIGTERM handler, how warnings print) are put back after.
    """
    err = io.StringIO()
    handler, showwarning = signal.getsignal(signal.SIGTERM), warnings.showwarning
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(list(argv))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        signal.signal(signal.SIGTERM, handler)
        warnings.showwarning = showwarning
    return code, err.getvalue()


def udp_family(topo) -> int:
    """AF_INET or AF_INET6: the socket family of a sandbox's addresses."""

    return socket.AF_INET if topo.ip_version == 4 else socket.AF_INET6


def udp_roundtrip(topo, size: int, port: int = 5001) -> bytes:
    """Send ``size`` bytes from a kernel UDP socket in the writer namespace to one in the reader's; what arrived."""

    with topo.enter("reader"):
        reader = socket.socket(udp_family(topo), socket.SOCK_DGRAM)
        reader.bind((topo.reader_ip, port))
        reader.settimeout(2)
    with topo.enter("writer"):
        writer = socket.socket(udp_family(topo), socket.SOCK_DGRAM)
        writer.bind((topo.writer_ip, 40101))
    with reader, writer:
        writer.sendto(b"r" * size, (topo.reader_ip, port))
        return reader.recv(65535)


def ipv6_udp_frame(
    link,
    src_ip: str,
    dst_ip: str,
    dport: int,
    payload: bytes,
    *,
    sport: int = 40101,
    checksum: int | None = None,
    hop_limit: int = 64,
) -> bytes:
    """Ethernet + IPv6 + UDP built with dpkt (which computes the UDP checksum), or with ``checksum`` forced."""

    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload, ulen=8 + len(payload))
    ip6 = dpkt.ip6.IP6(
        src=socket.inet_pton(socket.AF_INET6, src_ip),
        dst=socket.inet_pton(socket.AF_INET6, dst_ip),
        nxt=dpkt.ip.IP_PROTO_UDP,
        hlim=hop_limit,
        plen=len(udp),
        data=udp,
    )
    packet = bytes(ip6)
    if checksum is not None:
        packet = packet[:46] + struct.pack("!H", checksum) + packet[48:]  # 40-byte IPv6 header, then UDP's sum at 6
    macs = bytes.fromhex((link.dst_mac + link.src_mac).replace(":", ""))
    return macs + struct.pack("!H", dpkt.ethernet.ETH_TYPE_IP6) + packet


def vlan_tagged(frame: bytes, vlan_id: int, priority: int = 0, tpid: int = 0x8100) -> bytes:
    """``frame`` with a VLAN tag (TPID, then priority, DEI 0 and id: IEEE 802.1Q, 9.6) after its two MACs."""

    return frame[:12] + struct.pack("!HH", tpid, priority << 13 | vlan_id) + frame[12:]


def sandbox_frame(topo, dport: int, payload: bytes) -> bytes:
    """A UDP frame from the sandbox's writer to its reader, for its IP version (FrameTemplate or dpkt)."""

    link = topo.link()
    if topo.ip_version == 6:
        return ipv6_udp_frame(link, topo.writer_ip, topo.reader_ip, dport, payload)
    template = FrameTemplate(
        dport, src_ip=topo.writer_ip, dst_ip=topo.reader_ip, src_mac=link.src_mac, dst_mac=link.dst_mac
    )
    return template.stamp(payload)


def inject(topo, frames) -> None:
    """Send raw ``frames`` with an AF_PACKET socket bound to the writer's link, inside the writer namespace."""

    with topo.enter("writer"):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with sock:
        sock.bind((topo.writer_if, 0))
        for frame in frames:
            sock.send(frame)


# --- rawpacer as a separate process, as a user runs it -------------------------------------------

JSON_ROW_KEYS = frozenset(
    {
        "writer",
        "readers",
        "ns_per_op",
        "packets_per_s",
        "bytes_per_op",
        "allocs_per_op",
        "sent",
        "delivered",
        "intact",
        "payload_bytes",
    }
)
"""Keys every row of compare's JSON has."""


def rawpacer_command(*args: str) -> list[str]:
    """``python -m rawpacer.cli ARGS`` with this interpreter."""
    return [sys.executable, "-m", "rawpacer.cli", *args]


def cli(
    *args: str,
    prefix: Sequence[str] = (),
    cwd: Path = ROOT,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``rawpacer ARGS`` to the end (after ``prefix``, e.g. setpriv), the checkout importable;
    ``env`` replaces the whole environment when given."""
    return subprocess.run(
        [*prefix, *rawpacer_command(*args)],
        cwd=cwd,
        env=dict(env if env is not None else os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def cli_process(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``rawpacer ARGS`` started in the background (stdout, stderr piped); killed if still alive after."""
    process = subprocess.Popen(
        rawpacer_command(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def interrupt(process: subprocess.Popen[str], sig: int = signal.SIGINT, timeout: float = 60) -> tuple[str, str]:
    """Send ``sig`` and wait for the process to finish; its stdout and stderr."""
    process.send_signal(sig)
    return process.communicate(timeout=timeout)


def wait_until(condition: Callable[[], object], timeout: float = 30, step: float = 0.05) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


@contextlib.contextmanager
def udp_sender(topo: Topology) -> Iterator[Callable[[bytes, int], int]]:
    """A plain UDP socket in the writer namespace, as ``send(data, port)`` to the readers' address."""
    family = socket.AF_INET6 if ":" in topo.reader_ip else socket.AF_INET
    with topo.enter("writer"):
        sock = socket.socket(family, socket.SOCK_DGRAM)
    with sock:
        sock.bind((topo.writer_ip, 0))
        yield lambda data, port: sock.sendto(data, (topo.reader_ip, port))


def udp_rx_queue(topo: Topology, port: int) -> int:
    """Bytes waiting in the readers' UDP socket on ``port`` (``rx_queue`` of /proc/net/udp[6])."""
    with topo.enter("reader"):
        for name in ("udp", "udp6"):
            with open(f"/proc/thread-self/net/{name}") as handle:
                for line in handle.readlines()[1:]:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no UDP socket on port {port} in the reader namespace")


# --- captures for replay -------------------------------------------------------------------------


def write_pcap(path: Path | str, frames: Sequence[bytes], gap_ns: int = 100_000, linktype: int = 1) -> Path:
    """A nanosecond pcap of ``frames``, frame i captured ``i * gap_ns`` after the first."""
    with open(path, "wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        for i, frame in enumerate(frames):
            seconds, ns = divmod(1_700_000_000 * 10**9 + i * gap_ns, 10**9)
            handle.write(struct.pack("<IIII", seconds, ns, len(frame), len(frame)) + frame)
    return Path(path)


def capture_frames(flows: int = 3, per_flow: int = 4, size: int = 100, sequenced: bool = False) -> list[bytes]:
    """UDP frames of ``flows`` flows (captured destinations 10.0.0.x:53), each datagram's payload its own;
    ``sequenced``: each payload starts with its flow's sequence field (0, 1, ... per flow, in file order)."""
    eth = dpkt.ethernet.Ethernet(src=b"\x02\0\0\0\0\x0a", dst=b"\x02\0\0\0\0\x0b")
    frames = []
    for i in range(flows * per_flow):
        payload = struct.pack("!I", i) * (size // 4)
        if sequenced:
            payload = sequence_bytes(i // flows) + payload[SEQUENCE_BYTES:]
        udp = dpkt.udp.UDP(sport=3333, dport=53, data=payload)
        udp.ulen = len(udp)
        ip = dpkt.ip.IP(src=bytes([10, 1, 1, 1]), dst=bytes([10, 0, 0, 1 + i % flows]), p=17, data=udp)
        ip.len = len(ip)
        eth.data = ip
        frames.append(bytes(eth))
    return frames
