"""--vary's stamped fields in real namespaces: what leaves each engine back end, captured with an AF_PACKET
socket at the readers' veth end, is frame for frame what the numpy twin predicts (``FramePool.leaving``):
sport per packet (random: far more than the old 4,096 draws), src-ip past 65,536 frames without
repeating, the IPv6 flow label, the VLAN id; every IPv4 header and UDP checksum valid (rawpacer's parser
and scapy); the readers count every datagram intact; paced and unpaced (issue 21)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from scapy.all import IP, UDP, Ether, raw

from rawpacer.bench import rig
from rawpacer.bench.config import make_config
from rawpacer.bench.oploop import OpLoop, Outcome
from rawpacer.bench.runner import paced
from rawpacer.bench.session import shaped
from rawpacer.bench.shaping import ShapeSpec, shape_writer
from rawpacer.headers import parse_frame
from rawpacer.kernel.sockbuf import set_buffer_size
from rawpacer.sandbox import Topology
from rawpacer.traffic import parse_varies
from rawpacer.traffic.pool import STAMPED_POOL, FramePool
from rawpacer.writers import base as registry
from rawpacer.writers.base import WriterOptions

ETH_P_ALL = 0x0003
PACKET_AUXDATA = 8  # linux/if_packet.h: struct tpacket_auxdata with each frame
TP_STATUS_VLAN_VALID = 0x10
PACKET_OUTGOING = 4
SOL_PACKET = 263  # linux/socket.h
READERS = 4
SIZE = 40  # payload bytes: small frames, so 20,000 of them fit the capture socket's buffer


@contextlib.contextmanager
def captured(topo: Topology) -> Iterator[list[bytes]]:
    """Every frame arriving at the readers' veth end while the body runs, as it came on the wire: an
    802.1Q tag the kernel took into the skb's metadata put back (PACKET_AUXDATA, packet(7))."""
    with topo.enter("reader"):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    frames: list[bytes] = []
    stop = threading.Event()
    with sock:
        set_buffer_size(sock, "rcv", 64 << 20)
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.bind((topo.reader_if, ETH_P_ALL))
        sock.settimeout(0.2)

        def drain() -> None:
            while True:
                try:
                    data, ancillary, _, address = sock.recvmsg(4096, socket.CMSG_SPACE(20))
                except TimeoutError:
                    if stop.is_set():
                        return
                    continue
                if address[2] == PACKET_OUTGOING:
                    continue
                for level, kind, aux in ancillary:
                    status, _, _, _, _, tci, tpid = struct.unpack("=IIIHHHH", aux[:20])
                    if level == SOL_PACKET and kind == PACKET_AUXDATA and status & TP_STATUS_VLAN_VALID:
                        data = data[:12] + struct.pack(">HH", tpid or 0x8100, tci) + data[12:]
                frames.append(data)

        thread = threading.Thread(target=drain)
        thread.start()
        try:
            yield frames
        finally:
            stop.set()
            thread.join()


@dataclass
class Run:
    outcome: Outcome
    pool: FramePool
    want: list[bytes]
    got: list[bytes]


def stream(
    writer: str, vary: list[str], total: int, *, first: int = 0, rate: str | None = None, wide: bool = False, **extra
) -> Run:
    """``total`` frames of a shaped stream from frame ``first``, through ``writer``'s engine on veth, with
    what arrived captured (the sending thread pinned to one CPU, so veth's per-CPU backlog keeps the order).
    ``wide``: the variations parsed against the benchmarking block, not the sandbox's /24 (``check_shape``)."""
    shape_options = {} if wide else {"vary": vary, "seed": 21}
    pace_options = {} if rate is None else {"rate": rate, "burst": 1}
    config = make_config(
        writers=writer, readers=READERS, topology="veth", mode="stream", size=SIZE, **shape_options, **pace_options,
        **extra,
    )  # fmt: skip
    with rig.sandbox(config) as topo, rig.readers(config, topo, READERS) as readers:
        options = WriterOptions(SIZE, allow_iface=topo.allow_iface)
        with rig.open_writer(config, topo, readers, registry.get(writer), options) as opened:
            source = rig.source(config, readers)
            if wide:
                source.fill(readers.buffer)
                varies = parse_varies(vary, seed=21, ip_version=topo.ip_version)
                shape = shape_writer(ShapeSpec(varies=varies), opened, readers.messages)
            else:
                shape = shaped(config, opened, readers, source)
            assert shape is not None
            shape.sent = first
            want = shape.pool.leaving(first, total)
            pacer = None if config.pace is None else paced(config.pace, opened).pacer
            loop = OpLoop(opened, readers, source, shape=shape) if pacer is None else OpLoop(
                opened, readers, source, pacer, shape=shape
            )  # fmt: skip
            cpus = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {min(cpus)})
            try:
                with captured(topo) as got, topo.enter("writer"):
                    outcome = loop.shaped_stream(total)
            finally:
                os.sched_setaffinity(0, cpus)
    return Run(outcome, shape.pool, want, [f for f in got if to_readers(f, readers.ports)])


def to_readers(frame: bytes, ports: list[int]) -> bool:
    """A UDP datagram to one of the readers' ports (not the writer's kernel's own MLD reports and such)."""
    try:
        return parse_frame(frame).dport in ports
    except ValueError:
        return False


def all_intact(run: Run, total: int) -> None:
    counts = run.outcome.result.counts
    assert counts.delivered == counts.intact == total and counts.lost == counts.corrupt == 0


def checksums_valid(frames: list[bytes], version: int = 4) -> None:
    """rawpacer's parser on every frame; scapy recomputing both checksums on every 50th."""
    assert all(parse_frame(f).checksums_ok for f in frames)
    for frame in frames[::50]:
        packet = Ether(frame)
        udp, given = packet[UDP], packet[UDP].chksum
        del udp.chksum
        if version == 4:
            ip_given = packet[IP].chksum
            del packet[IP].chksum
            assert Ether(raw(packet))[IP].chksum == ip_given
        assert Ether(raw(packet))[UDP].chksum == given


@pytest.mark.parametrize("rate", [None, "50k"], ids=["unpaced", "paced"])
@pytest.mark.parametrize("writer", ["packet-raw", "packet-ring", "xdp", "ip-raw"])
def test_a_random_source_port_is_drawn_per_packet_as_the_twin_says(writer, rate):
    total = 10_000  # ~9,270 distinct draws of 65,535 expected: well over the old pool of 4,096 twice
    run = stream(writer, ["sport=1-65535:random", "dport=5001-5004"], total, rate=rate)
    all_intact(run, total)
    assert len(run.pool) == STAMPED_POOL  # the readers' ports repeated: sport is stamped per frame, not pooled
    if writer == "ip-raw":  # IP packets: the kernel adds the link header, so compare from the IP header on
        run.want = [run.got[0][:14] + w for w in run.want]
    assert run.got == run.want
    ports = [parse_frame(f).sport for f in run.got]
    assert len(set(ports)) > 4096 * 2  # no longer a pool of 4,096 draws repeating
    checksums_valid(run.got)


@pytest.mark.parametrize("writer", ["packet-ring", "xdp"])
def test_a_source_range_wider_than_65536_runs_on_past_the_old_cut(writer):
    """198.18.0.0/15 (131,072 addresses) from frame 60,000: the addresses go on past frame 65,536 where the
    old pool was cut, one new address a frame. Sources outside the writer's /24 may be dropped by the
    readers' reverse-path filter (the host's rp_filter), so the capture alone is judged here."""
    total = 12_000
    run = stream(writer, ["src-ip=198.18.0.0-198.19.255.255"], total, first=60_000, wide=True)
    assert len(run.pool) == STAMPED_POOL and run.pool.whole  # READERS divides it
    assert run.got == run.want
    sources = [parse_frame(f).src_ip for f in run.got]
    assert len(set(sources)) == total and sources[0] == "198.18.234.96" and sources[-1] == "198.19.25.63"
    checksums_valid(run.got)


@pytest.mark.parametrize("writer", ["packet-raw", "xdp"])
def test_an_ipv6_flow_label_and_source_are_stamped_per_frame(writer):
    total = 5_000
    vary = ["flow-label=0-1048575:random", "src-ip=2001:2::1-2001:2::ff", "sport=1000-1999:random"]
    run = stream(writer, vary, total, ip_version=6)
    all_intact(run, total)
    assert run.got == run.want
    parsed = [parse_frame(f) for f in run.got]
    assert len({f.flow_label for f in parsed}) > total * 0.99 and len({f.src_ip for f in parsed}) == 255
    checksums_valid(run.got, version=6)


@pytest.mark.parametrize("rate", [None, "50k"], ids=["unpaced", "paced"])
@pytest.mark.parametrize("writer", ["packet-raw", "packet-ring", "xdp"])
def test_a_vlan_id_is_stamped_into_each_tag(writer, rate):
    """The readers' end accepts the run's VLAN id only (sandbox/vlan.py), so the id "varies" over that one
    value; the capture shows the tag each frame left with, its priority bits kept."""
    total = 3_000
    run = stream(writer, ["vlan=5", "sport=1-65535:random"], total, rate=rate, vlan=5, vlan_priority=3)
    all_intact(run, total)
    assert run.got == run.want
    assert {f[12:16] for f in run.got} == {struct.pack(">HH", 0x8100, 3 << 13 | 5)}
    checksums_valid(run.got)
