"""The xdp writer delivers real frames through an AF_XDP socket to kernel UDP readers in sandboxes:
every fit on lo and veth at small and jumbo MTUs, multi-buffer frames, small UMEMs and rings,
replay, spans, pcap, and AF_XDP's failure modes as one-line errors."""

from __future__ import annotations

import contextlib
import functools
import os
import socket

import pytest
from helpers import fanouts, make_writer
from pyroute2 import IPRoute
from scapy.layers.inet import IP, UDP, defragment
from scapy.utils import rdpcap

from rawpacer.bench.oploop import OpLoop
from rawpacer.errors import Unavailable, UsageError
from rawpacer.headers import build_fragments, build_frame, max_payload
from rawpacer.kernel.afxdp import XdpSocket, xdp_support
from rawpacer.messages import MessageSource
from rawpacer.pcap import read_pcap
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Sandbox
from rawpacer.writers.base import Fit
from rawpacer.writers.xdp import XdpKnobs

CHUNK = 4096
WHERE = [("lo", 1500), ("lo", 65536), ("veth", 1500), ("veth", 9000)]
YES = {True: "yes", False: "no"}


@functools.cache
def kernel_offers() -> tuple[bool, bool]:
    """(multi-buffer, TX budget): what this kernel's AF_XDP does, found by doing it on a real socket,
    not by the kernel's version nor by ``features()`` (the probe under test): does bind() with
    XDP_USE_SG succeed, does setsockopt(XDP_MAX_TX_SKB_BUDGET) on a TX ring? Any other failure raises."""
    with Sandbox("lo") as topo, topo.enter("writer"):
        link = topo.link()
        try:
            XdpSocket(link.ifname, link.ifindex, chunks=4, tx_ring=4, completion_ring=4, multi_buffer=True).close()
            multi_buffer = True
        except UsageError as exc:  # bind: EINVAL, the flag is unknown here
            assert "refused (EINVAL)" in str(exc)
            multi_buffer = False
        try:
            XdpSocket(link.ifname, link.ifindex, chunks=4, tx_ring=64, completion_ring=4, tx_budget=64).close()
            budget = True
        except Unavailable as exc:  # setsockopt: ENOPROTOOPT, the option is unknown here
            assert "no XDP_MAX_TX_SKB_BUDGET" in str(exc)
            budget = False
    return multi_buffer, budget


@contextlib.contextmanager
def udp_readers(topo, count: int, timeout: float = 1.0):
    """``count`` plain kernel UDP sockets bound in the reader namespace, with big receive buffers."""
    with contextlib.ExitStack() as stack, topo.enter("reader"):
        socks = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            sock.bind((topo.reader_ip, 0))
            sock.settimeout(timeout)
            socks.append(sock)
        yield socks


def receive(sock: socket.socket) -> bytes | None:
    """One datagram, or None when none arrives within the socket's time-out."""
    try:
        return sock.recv(1 << 17)
    except TimeoutError:
        return None


@pytest.mark.parametrize("readers", [1, 100, 1000])
@pytest.mark.parametrize("fit", ["trim", "fragment"])
@pytest.mark.parametrize("where", WHERE, ids=[f"{k}{m}" for k, m in WHERE])
def test_delivers_intact_on_every_link(where: tuple[str, int], fit: str, readers: int) -> None:
    kind, mtu = where
    with Sandbox(kind, mtu=mtu) as topo:
        size, intact = fanouts(topo, "xdp", readers, 2, fit=Fit(fit))
    assert (size, intact) == (1500 if fit == "fragment" or mtu > 1500 else 1472, 2 * readers)


@pytest.mark.parametrize("readers", [1, 100])
@pytest.mark.parametrize(
    "kind,mtu,size,fit",
    [("lo", 65536, 60000, "trim"), ("veth", 9000, 20000, "trim"), ("veth", 9000, 20000, "fragment")],
)
def test_frames_longer_than_a_chunk_go_as_multi_buffer_packets(kind, mtu, size, fit, readers) -> None:
    """Where the kernel binds with XDP_USE_SG; elsewhere the writer falls back to one chunk per frame."""
    multi_buffer = kernel_offers()[0]
    largest = mtu if multi_buffer else CHUNK - 14
    with Sandbox(kind, mtu=mtu) as topo:
        assert fanouts(topo, "xdp", readers, 2, size=size, fit=Fit(fit)) == (
            size if fit == "fragment" else min(size, max_payload(largest)),
            2 * readers,
        )
        with make_writer(topo, "xdp", [5001]) as writer:
            assert writer.multi_buffer == multi_buffer and writer.mtu == largest


@pytest.mark.parametrize(
    "kind,mtu,size,fit,knobs",
    [
        ("lo", None, 1500, "trim", XdpKnobs(chunks=4, tx_ring=4, completion_ring=4)),
        ("lo", None, 1500, "trim", XdpKnobs(chunks=64, tx_ring=32, completion_ring=2, tx_budget=32)),
        ("lo", None, 60000, "trim", XdpKnobs(chunks=20, tx_ring=16, completion_ring=16)),
        ("veth", 576, 3000, "fragment", XdpKnobs(chunks=3, tx_ring=4, completion_ring=4)),
        ("veth", 9000, 20000, "fragment", XdpKnobs(chunks=5, tx_ring=8, completion_ring=8, chunk_size=2048)),
    ],
)
def test_a_umem_and_rings_smaller_than_one_fanout_still_deliver_everything(kind, mtu, size, fit, knobs) -> None:
    with Sandbox(kind, mtu=mtu) as topo:
        assert fanouts(topo, "xdp", 100, 3, size=size, knobs=knobs, fit=Fit(fit)) == (size, 300)


def test_strict_refuses_and_sends_what_fits() -> None:
    with Sandbox("veth", mtu=1400) as topo:
        with pytest.raises(UsageError, match="MTU is 1400.*1372 bytes"):
            make_writer(topo, "xdp", [5001], message_size=1500, fit=Fit.STRICT)
        assert fanouts(topo, "xdp", 10, 2, size=1372, fit=Fit.STRICT) == (1372, 20)


def test_without_multi_buffer_a_frame_is_one_chunk_and_every_fit_says_so() -> None:
    """multi_buffer=False stands in for a kernel without XDP_USE_SG: the largest frame is one
    4096-byte chunk, so lo's MTU of 65536 acts as 4082."""
    no_sg = XdpKnobs(multi_buffer=False)
    with Sandbox("lo") as topo:
        with make_writer(topo, "xdp", [5001], no_sg, message_size=60000) as writer:
            assert (writer.multi_buffer, writer.mtu, writer.delivered_size) == (False, CHUNK - 14, CHUNK - 42)
            assert "one 4096-byte UMEM chunk" in (writer.mtu_reason or "")
        assert fanouts(topo, "xdp", 20, 2, size=60000, knobs=no_sg) == (CHUNK - 42, 40)
        assert fanouts(topo, "xdp", 20, 2, size=60000, knobs=no_sg, fit=Fit.FRAGMENT) == (60000, 40)
        with pytest.raises(UsageError) as info:
            make_writer(topo, "xdp", [5001], no_sg, message_size=5000, fit=Fit.STRICT)
    text = str(info.value)
    assert "one 4096-byte UMEM chunk without multi-buffer" in text and f"{CHUNK - 42} bytes" in text


def test_pcap_round_trips_and_scapy_dissects_every_frame_as_valid(tmp_path) -> None:
    """Equal lengths (the batch path, two-chunk frames), then mixed lengths with fragments (frame by
    frame): recorded byte for byte as build_frame / build_fragments make them, each valid to scapy."""
    path = str(tmp_path / "xdp.pcap")
    with Sandbox("veth", mtu=9000) as topo, udp_readers(topo, 5) as socks:
        ports = [s.getsockname()[1] for s in socks]
        same = [os.urandom(8000) for _ in ports]
        mixed = [os.urandom(n) for n in (8972, 30000, 1, 5000, 20000)]
        with make_writer(topo, "xdp", ports, message_size=30000, fit=Fit.FRAGMENT, pcap=path) as writer:
            writer.send(same)
            writer.send(mixed)
        got = [[receive(s), receive(s)] for s in socks]
        link = topo.link()
    assert got == [list(pair) for pair in zip(same, mixed)]
    addr = {"src_ip": topo.writer_ip, "dst_ip": topo.reader_ip, "src_mac": link.src_mac, "dst_mac": link.dst_mac}
    frames = read_pcap(path)[1]
    expected = [build_frame(p, m, **addr) for p, m in zip(ports, same)]
    for port, message in zip(ports, mixed):
        if len(message) <= max_payload(9000):
            expected.append(build_frame(port, message, **addr))
        else:
            ip_id = int.from_bytes(frames[len(expected)][18:20], "big")
            expected += build_fragments(port, message, 9000, ip_id=ip_id, **addr)
    assert frames == expected and len(frames) == 5 + 1 + 4 + 1 + 1 + 3
    assert min(len(f) for f in frames[:5]) > CHUNK  # each went out as a two-descriptor packet
    packets = rdpcap(path)
    for packet in packets:
        rebuilt = IP(bytes(packet[IP]))
        del rebuilt.chksum
        assert IP(bytes(rebuilt)).chksum == packet[IP].chksum
    whole = defragment(packets)
    assert len(whole) == 10
    for packet in whole:
        rebuilt = IP(bytes(packet[IP]))
        sent = rebuilt[UDP].chksum
        del rebuilt[UDP].chksum
        assert IP(bytes(rebuilt))[UDP].chksum == sent


def test_a_second_socket_on_the_same_queue_gets_ebusy() -> None:
    with (
        Sandbox("veth", mtu=1500) as topo,
        make_writer(topo, "xdp", [5001]),
        pytest.raises(Unavailable, match=r"queue 0 of rpw0 is taken: .*\(bind: EBUSY\)"),
    ):
        make_writer(topo, "xdp", [5002])
    with Sandbox("lo") as topo, make_writer(topo, "xdp", [5001]) as first:
        first.close()
        with make_writer(topo, "xdp", [5001]) as again:  # closing released the queue
            assert again.mode == "copy"


def test_replay_sends_the_frames_already_in_the_umem() -> None:
    """``resend`` publishes the descriptors again without reading the messages: after the caller
    breaks its promise and changes them, the readers still get what ``send`` stamped."""
    with Sandbox("veth", mtu=1500) as topo, udp_readers(topo, 4) as socks:
        ports = [s.getsockname()[1] for s in socks]
        first = [os.urandom(1472) for _ in ports]
        with make_writer(topo, "xdp", ports, message_size=1472) as writer:
            assert writer.send(first) == 4
            assert [receive(s) for s in socks] == first
            assert writer.resend([os.urandom(1472) for _ in ports]) == 4
            assert [receive(s) for s in socks] == first
            second = [os.urandom(1472) for _ in ports]
            writer.send(second)
            assert [receive(s) for s in socks] == second


@pytest.mark.parametrize("knobs", [XdpKnobs(), XdpKnobs(chunks=8, tx_ring=8, completion_ring=8)])
def test_stream_replay_delivers_intact(knobs: XdpKnobs) -> None:
    with (
        Sandbox("lo") as topo,
        ReaderSet(topo, 50, 1500) as readers,
        make_writer(topo, "xdp", readers.ports, knobs, message_size=1500) as writer,
    ):
        outcome = OpLoop(writer, readers, MessageSource.make("crypto", 1500)).stream(40)
    assert (outcome.sent, outcome.result.counts.intact, outcome.result.counts.lost) == (2000, 2000, 0)


def test_spans_send_exactly_their_ports() -> None:
    with Sandbox("lo") as topo, udp_readers(topo, 10, timeout=0.2) as socks:
        ports = [s.getsockname()[1] for s in socks]
        messages = [os.urandom(1000) for _ in ports]
        with make_writer(topo, "xdp", ports, message_size=1000) as writer:
            assert writer.send(messages, 3, 4) == 4
            assert [receive(s) for s in socks] == [None] * 3 + messages[3:7] + [None] * 3
            assert writer.resend(messages, 8, 2) == 2
            assert writer.send(messages, 0, 1) == 1
            assert [receive(s) for s in socks] == messages[:1] + [None] * 7 + messages[8:]


@pytest.mark.parametrize("kind", ["lo", "veth"])
def test_copy_mode_is_what_lo_and_veth_offer(kind: str) -> None:
    with Sandbox(kind, mtu=1500 if kind == "veth" else None) as topo:
        with make_writer(topo, "xdp", [5001]) as writer:
            assert writer.mode == "copy"
            writer.send([b"x"])
            assert writer.statistics()["tx_ring_empty_descs"] == 1 and writer.problems() == []
        with pytest.raises(Unavailable, match=r"no AF_XDP zero-copy \(bind with XDP_ZEROCOPY: EOPNOTSUPP\)"):
            make_writer(topo, "xdp", [5001], XdpKnobs(mode="zerocopy"))


def test_an_invalid_descriptor_is_counted_and_named_when_asked() -> None:
    """Descriptors published behind the engine's back (on its own TX ring, so its indices stay
    right) that the kernel refuses: counted by XDP_STATISTICS and named by ``problems`` (read then,
    not per send); should the kernel hand their addresses back, the engine ignores chunks it never
    sent, so the frames after them arrive intact."""
    with Sandbox("lo") as topo, udp_readers(topo, 3) as socks:
        ports = [s.getsockname()[1] for s in socks]
        with make_writer(topo, "xdp", ports, message_size=100) as writer:
            tx = writer.tx_ring
            bad = [(0, 0, 0), (CHUNK, CHUNK + 1, 0)]  # no length; longer than its chunk
            count, index = tx.reserve(len(bad))
            for k, desc in enumerate(bad[:count]):
                tx.set_entry(index + k, *desc)
            tx.submit(count)
            messages = [os.urandom(100) for _ in ports]
            assert writer.send(messages) == 3
            assert [receive(s) for s in socks] == messages
            assert writer.statistics()["tx_invalid_descs"] == 2
            assert writer.problems() == ["xdp: 2 TX descriptor(s) refused as invalid (tx_invalid_descs)"]
            again = [os.urandom(100) for _ in ports]
            assert writer.send(again) == 3
            assert [receive(s) for s in socks] == again


def test_frames_the_driver_drops_are_counted_not_sent() -> None:
    """With the veth peer down, veth's xmit drops every frame; the kick says EBUSY for each."""
    with Sandbox("veth", mtu=1500) as topo, make_writer(topo, "xdp", [5001, 5002, 5003], message_size=100) as writer:
        with topo.enter("reader"), IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=topo.reader_if)[0], state="down")
        assert writer.send([os.urandom(100)] * 3) == 0
        assert writer.statistics()["dropped"] == 3
        assert writer.problems() == ["xdp: 3 frame(s) dropped by the driver after the kernel took them (EBUSY)"]


def test_the_kick_strategies_both_drain_the_ring() -> None:
    """Raised budget: one sendto per fan-out; the kernel's 32: one per 32 descriptors (EAGAIN between)."""
    with Sandbox("lo") as topo:
        kicks = {}
        for budget in (0, 32):
            with ReaderSet(topo, 100, 1500) as readers:
                writer = make_writer(topo, "xdp", readers.ports, XdpKnobs(tx_budget=budget), message_size=1500)
                with writer:
                    outcome = OpLoop(writer, readers, MessageSource.make("fast", 1500)).fanout()
                    kicks[budget] = (writer.tx_budget, writer.statistics()["kicks"], outcome.result.counts.intact)
    assert kicks[0] == ((512, 1, 100) if kernel_offers()[1] else (32, 4, 100))
    assert kicks[32] == (32, 4, 100)


def test_xdp_support_says_what_the_kernel_offers() -> None:
    usable, line = xdp_support()
    multi_buffer, budget = kernel_offers()
    assert usable and f"multi-buffer (XDP_USE_SG, Linux 6.6+): {YES[multi_buffer]}" in line
    assert f"XDP_MAX_TX_SKB_BUDGET (Linux 6.17+): {YES[budget]}" in line


def test_a_bare_socket_refuses_bad_sizes_in_one_line() -> None:
    with Sandbox("lo") as topo, topo.enter("writer"):
        link = topo.link()
        with pytest.raises(UsageError, match="tx_ring 3 is not allowed; use a power of two"):
            XdpSocket(link.ifname, link.ifindex, chunks=4, tx_ring=3, completion_ring=4)
        with pytest.raises(UsageError, match="tx_budget 64 is not allowed; use 0 .automatic. or 32-32"):
            XdpSocket(link.ifname, link.ifindex, chunks=4, tx_ring=32, completion_ring=4, tx_budget=64)
        with pytest.raises(UsageError, match="chunks 2 is not allowed: a 60042-byte frame takes 15 chunks"):
            make_writer(topo, "xdp", [5001], XdpKnobs(chunks=2), message_size=60000)


def test_doctor_says_what_af_xdp_offers_and_probes_xdp(capsys) -> None:
    from rawpacer.cli import main

    assert main(["doctor", "--writer", "xdp"]) == 0
    out = capsys.readouterr().out
    assert f"  xdp: AF_XDP sockets: yes; multi-buffer (XDP_USE_SG, Linux 6.6+): {YES[kernel_offers()[0]]}" in out
    assert out.count("probe xdp") == 3 and "3/3 probes passed" in out
