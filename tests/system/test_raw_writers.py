"""The raw writers deliver real frames to real kernel UDP sockets in sandboxes, under every fit policy."""

from __future__ import annotations

import contextlib
import os
import socket
import struct

import pytest
from helpers import FAST_RAW_WRITERS, RAW_WRITERS, fanouts, make_writer

from rawpacer.errors import DeliveryError, SandboxError, UsageError
from rawpacer.headers import build_fragments, build_frame
from rawpacer.kernel.tpacket import TP_STATUS_SEND_REQUEST
from rawpacer.messages import MessageSource
from rawpacer.pcap import read_pcap
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Sandbox
from rawpacer.target import Link, Target
from rawpacer.writers import base
from rawpacer.writers.base import Fit, WriterOptions
from rawpacer.writers.packet_ring import RingKnobs

TOPOLOGIES = {"lo": ("lo", None), "veth1500": ("veth", 1500)}


@contextlib.contextmanager
def udp_readers(topo, count: int):
    """``count`` plain kernel UDP sockets bound in the reader namespace (1 s time-out each)."""
    with contextlib.ExitStack() as stack, topo.enter("reader"):
        socks = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.bind((topo.reader_ip, 0))
            sock.settimeout(1.0)
            socks.append(sock)
        yield socks


@pytest.mark.parametrize("fit", ["trim", "fragment"])
@pytest.mark.parametrize("where", list(TOPOLOGIES))
@pytest.mark.parametrize("name", FAST_RAW_WRITERS)
def test_writer_delivers_intact(name: str, where: str, fit: str) -> None:
    kind, mtu = TOPOLOGIES[where]
    with Sandbox(kind, mtu=mtu) as topo:
        size, intact = fanouts(topo, name, 100, 3, fit=Fit(fit))
    expected = 1472 if (where == "veth1500" and fit == "trim") else 1500
    assert (size, intact) == (expected, 300)


@pytest.mark.parametrize("fit", ["trim", "fragment"])
@pytest.mark.parametrize("where", list(TOPOLOGIES))
def test_scapy_writer_delivers_intact(where: str, fit: str) -> None:
    kind, mtu = TOPOLOGIES[where]
    with Sandbox(kind, mtu=mtu) as topo:
        size, intact = fanouts(topo, "scapy", 10, 2, fit=Fit(fit))
    assert intact == 20
    assert size == (1472 if (where == "veth1500" and fit == "trim") else 1500)


@pytest.mark.parametrize("mtu,size", [(576, 3000), (9000, 20000)])
def test_fragments_on_small_and_jumbo_mtu(mtu: int, size: int) -> None:
    with Sandbox("veth", mtu=mtu) as topo:
        for name in ("packet-ring", "ip-raw"):
            assert fanouts(topo, name, 20, 2, size=size, fit=Fit.FRAGMENT) == (size, 40)


def test_trim_reports_what_was_cut() -> None:
    with (
        Sandbox("veth", mtu=1500) as topo,
        udp_readers(topo, 1) as socks,
        make_writer(topo, "packet-raw", [socks[0].getsockname()[1]], message_size=1500) as writer,
    ):
        assert (writer.delivered_size, writer.trimmed_bytes) == (1472, 28)


@pytest.mark.parametrize("name", RAW_WRITERS)
def test_strict_refuses_naming_mtu_and_sizes(name: str) -> None:
    with Sandbox("veth", mtu=1400) as topo, pytest.raises(UsageError) as info:
        make_writer(topo, name, [5001], message_size=1500, fit=Fit.STRICT)
    text = str(info.value)
    assert "MTU is 1400" in text and "1500-byte" in text and "1372 bytes" in text


def test_strict_sends_what_fits() -> None:
    with Sandbox("veth", mtu=1400) as topo:
        assert fanouts(topo, "packet-ring", 10, 2, size=1372, fit=Fit.STRICT) == (1372, 20)


def test_small_ring_waits_for_the_kernel() -> None:
    with Sandbox("lo") as topo:
        assert fanouts(topo, "packet-ring", 100, 3, knobs=RingKnobs(frames=2)) == (1500, 300)
    with Sandbox("veth", mtu=576) as topo:
        assert fanouts(topo, "packet-ring", 50, 2, size=3000, knobs=RingKnobs(frames=3), fit=Fit.FRAGMENT) == (
            3000,
            100,
        )


def test_ring_reports_wrong_format() -> None:
    """A slot requested with a length longer than it holds: the kernel marks it WRONG_FORMAT and the
    engine's send() fails; the writer names the slot."""
    with Sandbox("lo") as topo, make_writer(topo, "packet-ring", [5001]) as writer:
        ring = writer.ring
        struct.pack_into("=III", ring.map, 0, TP_STATUS_SEND_REQUEST, ring.max_frame + 100, ring.max_frame + 100)
        with pytest.raises(DeliveryError, match="slot 0 is TP_STATUS_WRONG_FORMAT"):
            writer.send([b"x"])


def test_without_qdisc_bypass_still_delivers() -> None:
    with Sandbox("veth", mtu=1500) as topo:
        assert fanouts(topo, "packet-ring", 20, 2, knobs=RingKnobs(qdisc_bypass=False)) == (1472, 40)


def test_scapy_builds_the_same_bytes_as_rawpacer(tmp_path) -> None:
    pcap = str(tmp_path / "scapy.pcap")
    with Sandbox("veth", mtu=576) as topo, udp_readers(topo, 3) as socks:
        ports = [s.getsockname()[1] for s in socks]
        messages = [os.urandom(1000), os.urandom(500), os.urandom(400)]
        with make_writer(topo, "scapy", ports, message_size=1000, fit=Fit.FRAGMENT, pcap=pcap) as writer:
            writer.send(messages)
        link = topo.link()
    frames = read_pcap(pcap)[1]
    addr = {"src_ip": topo.writer_ip, "dst_ip": topo.reader_ip, "src_mac": link.src_mac, "dst_mac": link.dst_mac}
    ip_id = int.from_bytes(frames[0][18:20], "big")
    expected = build_fragments(ports[0], messages[0], 576, ip_id=ip_id, **addr)
    expected += [build_frame(port, m, **addr) for port, m in zip(ports[1:], messages[1:])]
    assert frames == expected


def test_fan_out_must_match_ports() -> None:
    with (
        Sandbox("lo") as topo,
        make_writer(topo, "packet-raw", [5001, 5002]) as writer,
        pytest.raises(UsageError, match="2 ports"),
    ):
        writer.send([b"x"])


def test_raw_writer_refuses_a_namespace_it_did_not_create() -> None:
    zero = "00:00:00:00:00:00"
    host_lo = Target("198.18.0.1", "198.18.0.1", (5001,), Link("lo", 1, 65536, zero, zero))
    for name in RAW_WRITERS:
        with pytest.raises(SandboxError, match="--iface lo"):
            base.get(name)(host_lo, WriterOptions())


@pytest.mark.parametrize("sizes", [[1500] * 8, [1500, 700, 1, 1472, 1500, 300, 1000, 1473]])
def test_ring_frames_equal_the_reference_builder(sizes, tmp_path) -> None:
    """Batched (equal sizes) and frame-by-frame (mixed sizes) ring stamping give build_frame's bytes."""
    pcap = str(tmp_path / "ring.pcap")
    with Sandbox("veth", mtu=1500) as topo, udp_readers(topo, len(sizes)) as socks:
        ports = [s.getsockname()[1] for s in socks]
        messages = [memoryview(os.urandom(n)) for n in sizes]
        with make_writer(topo, "packet-ring", ports, RingKnobs(frames=3), message_size=1500, pcap=pcap) as writer:
            writer.send(messages)
            writer.send(messages)
        got = [s.recv(2048) for s in socks]
        link = topo.link()
    addr = {"src_ip": topo.writer_ip, "dst_ip": topo.reader_ip, "src_mac": link.src_mac, "dst_mac": link.dst_mac}
    expected = [build_frame(p, bytes(m[:1472]), **addr) for p, m in zip(ports, messages)]
    assert read_pcap(pcap)[1] == expected * 2
    assert got == [bytes(m[:1472]) for m in messages]


@pytest.mark.parametrize("kind", ["lo", "veth"])
def test_reused_ring_slots_never_change_delivered_data(kind: str) -> None:
    """60 frames through a 2-slot ring to one socket that reads only afterwards: every one intact."""
    with Sandbox(kind, mtu=1500 if kind == "veth" else None) as topo, udp_readers(topo, 1) as socks:
        socks[0].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        port = socks[0].getsockname()[1]
        messages = [os.urandom(1472) for _ in range(60)]
        with make_writer(topo, "packet-ring", [port] * 60, RingKnobs(frames=2), message_size=1472) as writer:
            writer.send(messages)
        assert [socks[0].recv(2048) for _ in messages] == messages


@pytest.mark.parametrize("fit", ["trim", "fragment", "strict"])
@pytest.mark.parametrize("where", [("veth", 576), ("veth", 1500), ("veth", 9000), ("lo", None)])
def test_every_fit_on_every_mtu(where: tuple[str, int | None], fit: str) -> None:
    from rawpacer.headers import max_payload

    kind, mtu = where
    size = 1500
    with Sandbox(kind, mtu=mtu) as topo:
        limit = max_payload(topo.mtu)
        for name in RAW_WRITERS:
            if fit == "strict" and size > limit:
                with pytest.raises(UsageError, match=f"MTU is {topo.mtu}"):
                    make_writer(topo, name, [5001], message_size=size, fit=Fit.STRICT)
                continue
            expected = min(size, limit) if fit == "trim" else size
            assert fanouts(topo, name, 10, 2, size=size, fit=Fit(fit)) == (expected, 20)


@pytest.mark.parametrize("name", ["udp-sendmmsg", *FAST_RAW_WRITERS])
def test_resend_replays_the_last_fanout_and_send_always_takes_fresh_messages(name: str) -> None:
    with Sandbox("veth", mtu=1500) as topo, ReaderSet(topo, 8, 1500) as readers:
        source = MessageSource.make("crypto", 1500)
        with make_writer(topo, name, readers.ports, message_size=1500) as writer:
            for call in ("send", "resend", "resend", "fresh-send", "resend"):
                if call == "fresh-send":
                    source.fill(readers.buffer)  # new messages: a stale replay would read as corrupt
                readers.begin(writer.delivered_size)
                send = writer.send if call.endswith("send") and call != "resend" else writer.resend
                result = readers.wait(send(readers.messages))
                assert (result.counts.intact, result.counts.corrupt, result.counts.lost) == (8, 0, 0), (
                    call,
                    result.describe(),
                )
