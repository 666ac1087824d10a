"""Rewriter against scapy: random UDP, TCP and ICMP frames over IPv4 and IPv6, untagged or tagged, written
with scapy's pcap and pcapng writers, read back with read_capture and rewritten onto a sandbox, then
dissected by scapy with its checksums recomputed from scratch: the incremental ones must equal them.
Fragments, raw-IP link types, extension headers, VLAN tags and every frame that passes unchanged."""

from __future__ import annotations

import io
import ipaddress
import itertools
import socket
import tempfile
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import (
    ICMP,
    IP,
    TCP,
    UDP,
    Dot1Q,
    Ether,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    PcapNgWriter,
    Raw,
    defragment,
    defragment6,
    fragment,
    wrpcap,
)
from strategies import ips_v6, macs, ports

from rawpacer.errors import UsageError
from rawpacer.headers.checksum import checksum
from rawpacer.target import Link, Target
from rawpacer.traffic.capture import LinkType, read_capture
from rawpacer.traffic.rewrite import MAX_PENDING, Endpoints, Rewriter, make_endpoints, update_checksum

WRITER_MAC, READER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
MACS = {"src": "02:00:00:00:00:0a", "dst": "02:00:00:00:00:0b"}
"""Explicit MACs: scapy would otherwise resolve a destination MAC (ARP, neighbour discovery) on the host."""
V4 = ("198.18.0.1", "198.18.0.2")
V6 = ("2001:2::1", "2001:2::2")
SANDBOX = make_endpoints(WRITER_MAC, READER_MAC, V4, V6)
ADDRESSES = {IP: V4, IPv6: V6}

any_v4 = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
few_ports = st.sampled_from([53, 123, 5001, 40101])
"""Destination ports from a small set, so flows repeat within a capture."""


@st.composite
def captured_frames(draw: st.DrawFn) -> Ether:
    """One frame a capture might hold: UDP (sometimes without a checksum), TCP or ICMP, over IPv4 or
    IPv6 (sometimes behind extension headers), untagged or with one 802.1Q tag."""
    version = draw(st.sampled_from([4, 6]))
    kind = draw(st.sampled_from(["udp", "udp", "tcp", "icmp"]))
    if version == 4:
        ip = IP(src=draw(any_v4), dst=draw(st.sampled_from(["10.0.0.1", "192.0.2.9"])), id=draw(st.integers(0, 65535)))
        ip.ttl = draw(st.integers(1, 255))
    else:
        ip = IPv6(
            src=draw(ips_v6), dst=draw(st.sampled_from(["2001:db8::1", "ff02::1"])), fl=draw(st.integers(0, 2**20 - 1))
        )
        if draw(st.booleans()):
            ip = ip / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
    if kind == "udp":
        l4 = UDP(sport=draw(ports), dport=draw(few_ports))
        if version == 4 and draw(st.integers(0, 4)) == 0:
            l4.chksum = 0  # "no checksum" (RFC 768): must stay 0
    elif kind == "tcp":
        l4 = TCP(sport=draw(ports), dport=draw(ports))
    else:
        l4 = ICMP() if version == 4 else ICMPv6EchoRequest()
    packet = ip / l4 / Raw(draw(st.binary(max_size=300)))
    if draw(st.booleans()):
        packet = Dot1Q(vlan=draw(st.integers(1, 4094)), prio=draw(st.integers(0, 7))) / packet
    return Ether(src=draw(macs), dst=draw(macs)) / packet


def write_capture(path: Path, frames: list, kind: str, nano: bool = False) -> None:
    if kind == "pcapng":
        writer = PcapNgWriter(str(path))
        for frame in frames:
            writer.write(frame)
        writer.close()
    else:
        wrpcap(str(path), frames, nano=nano)


def recomputed(frame: bytes) -> bytes:
    """``frame`` with scapy recomputing the IPv4 header and UDP checksums from scratch."""
    packet = Ether(frame)
    for layer in (IP, UDP):
        if layer in packet:
            del packet[layer].chksum
    return bytes(packet)


def ip_layer(packet: Ether) -> IP | IPv6:
    return packet[IP] if IP in packet else packet[IPv6]


@settings(max_examples=60, deadline=None)
@given(st.lists(captured_frames(), min_size=1, max_size=12), st.sampled_from(["pcap", "pcapng"]), st.booleans())
def test_rewritten_udp_matches_scapy_and_the_rest_passes_unchanged(frames, kind, nano):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"c.{kind}"
        write_capture(path, frames, kind, nano)
        records = list(read_capture(str(path)))
    assert [r.data for r in records] == [bytes(f) for f in frames]
    rewriter = Rewriter(SANDBOX, itertools.count(5001))
    flows: dict[tuple[str, int], int] = {}
    for original, record in zip(frames, records):
        out = rewriter.rewrite(record)
        if UDP not in original:
            assert (out.frame, out.flow, out.port, out.payload) == (record.data, None, None, None)
            continue
        flow = flows.setdefault((ip_layer(original).dst, original[UDP].dport), len(flows))
        assert (out.flow, out.port) == (flow, 5001 + flow)
        sent = Ether(out.frame)
        assert (sent.src, sent.dst, Dot1Q in sent) == (WRITER_MAC, READER_MAC, False)
        ip = ip_layer(sent)
        assert (ip.src, ip.dst) == ADDRESSES[type(ip)]
        assert (sent[UDP].sport, sent[UDP].dport) == (original[UDP].sport, out.port)
        assert bytes(out.payload) == bytes(original[UDP].payload)
        assert bytes(sent[UDP].payload) == bytes(original[UDP].payload)
        if original[UDP].chksum == 0:
            fresh = Ether(recomputed(out.frame))
            fresh[UDP].chksum = 0
            assert sent[UDP].chksum == 0 and bytes(fresh) == out.frame
        else:
            assert recomputed(out.frame) == out.frame
    assert rewriter.flows.keys() == {
        (socket.inet_pton(socket.AF_INET6 if ":" in d else socket.AF_INET, d), p) for d, p in flows
    }
    assert not rewriter.unsupported


@settings(max_examples=400, deadline=None)
@given(captured_frames(), st.data())
def test_any_damaged_frame_is_rewritten_or_passed_never_an_exception(frame, data):
    """Bytes cut or overwritten anywhere (lengths, header lengths, ethertypes): the Rewriter answers
    for every frame with a Rewritten, whatever the link type it is said to come from."""
    raw = bytearray(bytes(frame))
    for _ in range(data.draw(st.integers(0, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    link = data.draw(st.sampled_from(list(LinkType)))
    out = Rewriter(SANDBOX, itertools.count(5001)).rewrite_frame(bytes(raw), link)
    assert out.flow is None or out.port == 5001 + out.flow


def capture_of(packets: list[bytes], linktype: int) -> list:
    """Records of an in-memory capture written by dpkt with ``linktype``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.pcap"
        out = io.BytesIO()
        writer = dpkt.pcap.Writer(out, linktype=linktype)
        for packet in packets:
            writer.writepkt(packet, 0)
        path.write_bytes(out.getvalue())
        return list(read_capture(str(path)))


@pytest.mark.parametrize(
    ("linktype", "packet"),
    [
        (101, IP(dst="10.0.0.1") / UDP(dport=53) / Raw(b"q")),
        (101, IPv6(dst="2001:db8::1") / UDP(dport=53) / Raw(b"q")),
        (228, IP(dst="10.0.0.1") / UDP(dport=53) / Raw(b"q")),
        (229, IPv6(dst="2001:db8::1") / UDP(dport=53) / Raw(b"q")),
    ],
)
def test_raw_ip_captures_get_an_ethernet_header(linktype, packet):
    [record] = capture_of([bytes(packet)], linktype)
    out = Rewriter(SANDBOX, [7000]).rewrite(record)
    sent = Ether(out.frame)
    assert (sent.src, sent.dst, out.port, sent[UDP].dport) == (WRITER_MAC, READER_MAC, 7000, 7000)
    assert recomputed(out.frame) == out.frame and bytes(out.payload) == b"q"


def test_raw_ip_frames_that_are_not_udp_still_get_an_ethernet_header():
    [record] = capture_of([bytes(IP(dst="10.0.0.1") / TCP())], LinkType.RAW)
    out = Rewriter(SANDBOX, [7000]).rewrite(record)
    assert out.flow is None and out.frame == bytes(Ether(src=WRITER_MAC, dst=READER_MAC) / IP(dst="10.0.0.1") / TCP())


@pytest.mark.parametrize("prio", [0, 5])
def test_a_sandbox_vlan_replaces_the_captured_id_and_keeps_the_priority(prio):
    tagged = make_endpoints(WRITER_MAC, READER_MAC, V4, vlan=100)
    rewriter = Rewriter(tagged, [6000, 6001])
    original = Ether(**MACS) / Dot1Q(vlan=7, prio=prio) / IP(dst="10.0.0.1") / UDP(dport=53) / Raw(b"x")
    untagged = Ether(**MACS) / IP(dst="10.0.0.1") / UDP(dport=54) / Raw(b"y")
    for frame, expect_prio in ((original, prio), (untagged, 0)):
        sent = Ether(rewriter.rewrite_frame(bytes(frame), LinkType.ETHERNET).frame)
        assert (sent[Dot1Q].vlan, sent[Dot1Q].prio) == (100, expect_prio)
        assert recomputed(bytes(sent)) == bytes(sent)


def fragments_of(version: int, ident: int, payload: bytes) -> list[bytes]:
    """The frames of one UDP datagram to 10.0.0.1 / 2001:db8::1 port 53, fragmented by scapy (IPv4) or
    cut by hand into Fragment-header packets of scapy's (IPv6: scapy's fragment6 takes seconds here)."""
    if version == 4:
        whole = IP(src="10.9.9.9", dst="10.0.0.1", id=ident) / UDP(dport=53) / Raw(payload)
        return [bytes(Ether(**MACS) / f) for f in fragment(whole, fragsize=600)]
    ip = IPv6(src="2001:db8::9", dst="2001:db8::1")
    datagram = bytes(ip / UDP(dport=53) / Raw(payload))[40:]
    size = 1232  # 1280 - 40 - 8, a multiple of 8
    return [
        bytes(
            Ether(**MACS)
            / ip
            / IPv6ExtHdrFragment(nh=17, offset=at // 8, m=int(at + size < len(datagram)), id=ident)
            / Raw(datagram[at : at + size])
        )
        for at in range(0, len(datagram), size)
    ]


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("reverse", [False, True])
def test_fragments_follow_their_first(version, reverse):
    """Every fragment of a datagram is its flow's; reassembled by scapy, the UDP checksum is valid.
    Out of order, the fragments before the first one cannot be placed and pass unchanged, counted."""
    payload = bytes(range(256)) * 12
    pieces = [Ether(f) for f in fragments_of(version, 4321, payload)]
    assert len(pieces) >= 3
    rewriter = Rewriter(SANDBOX, [6000])
    order = list(reversed(pieces)) if reverse else pieces
    outs = [rewriter.rewrite_frame(bytes(p), LinkType.ETHERNET) for p in order]
    if reverse:
        assert rewriter.unsupported == {"a later fragment before its first": len(pieces) - 1}
        assert [o.frame for o in outs[:-1]] == [bytes(p) for p in order[:-1]]
        assert (outs[-1].flow, outs[-1].port, outs[-1].payload) == (0, 6000, None)
        return
    assert [(o.flow, o.port, o.payload) for o in outs] == [(0, 6000, None)] * (len(pieces) - 1) + [(0, 6000, payload)]
    sent = [Ether(o.frame) for o in outs]
    for frame in sent:
        assert (ip_layer(frame).src, ip_layer(frame).dst) == ADDRESSES[type(ip_layer(frame))]
        if IP in frame:
            assert recomputed(bytes(frame))[14:34] == bytes(frame)[14:34]  # the IPv4 header checksum
    if version == 4:
        [datagram] = defragment([f[IP] for f in sent])
    else:
        datagram = defragment6([f[IPv6] for f in sent])
    datagram = datagram.__class__(bytes(datagram))
    assert (datagram[UDP].dport, bytes(datagram[UDP].payload)) == (6000, payload)
    fresh = datagram.copy()
    del fresh[UDP].chksum
    assert datagram[UDP].chksum == datagram.__class__(bytes(fresh))[UDP].chksum


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([4, 6]), st.randoms(use_true_random=False))
def test_interleaved_fragments_give_each_datagram_its_payload_once(version, rng):
    """Two datagrams' fragments, each first fragment ahead of its others, the rest shuffled together:
    each datagram's payload comes back once, on the fragment that completes it."""
    payloads = {1: bytes([1]) * 2500, 2: bytes([2]) * 3000}
    firsts = [fragments_of(version, i, p)[0] for i, p in payloads.items()]
    rest = [f for i, p in payloads.items() for f in fragments_of(version, i, p)[1:]]
    rng.shuffle(rest)
    rewriter = Rewriter(SANDBOX, [6000])
    outs = [rewriter.rewrite_frame(f, LinkType.ETHERNET) for f in firsts + rest]
    assert sorted(bytes(o.payload) for o in outs if o.payload is not None) == sorted(payloads.values())
    assert {(o.flow, o.port) for o in outs} == {(0, 6000)} and not rewriter.unsupported


def test_fragments_of_too_many_datagrams_at_once_drop_the_oldest():
    pieces = [fragments_of(4, i, bytes(1500)) for i in range(MAX_PENDING + 1)]
    rewriter = Rewriter(SANDBOX, [6000])
    for datagram in pieces:
        rewriter.rewrite_frame(datagram[0], LinkType.ETHERNET)
    assert rewriter.rewrite_frame(pieces[0][1], LinkType.ETHERNET).flow is None
    assert rewriter.unsupported == {"a later fragment before its first": 1}
    assert [rewriter.rewrite_frame(f, LinkType.ETHERNET).flow for f in pieces[1][1:]] == [0, 0]


def test_what_cannot_be_rewritten_passes_unchanged_and_is_counted():
    only_v6 = Rewriter(make_endpoints(WRITER_MAC, READER_MAC, V6), [6000, 6001])
    v4 = bytes(Ether(**MACS) / IP(dst="10.0.0.1") / UDP(dport=53) / Raw(b"x" * 100))
    double = bytes(Ether(**MACS) / Dot1Q(vlan=5) / Dot1Q(vlan=6) / IPv6() / UDP() / Raw(b"x"))
    cut = bytes(Ether(**MACS) / IPv6(dst="2001:db8::1") / UDP(dport=53) / Raw(b"x" * 100))[:-10]
    for frame in (v4, double, cut):
        assert only_v6.rewrite_frame(frame, LinkType.ETHERNET).frame == frame
    assert only_v6.unsupported == {
        "IPv4 UDP with no IPv4 sandbox address": 1,
        "more than one VLAN tag": 1,
        "cut by the snapshot length": 1,
    }
    assert only_v6.flows == {}


def test_running_out_of_reader_ports_is_one_line():
    rewriter = Rewriter(SANDBOX, [6000])
    rewriter.rewrite_frame(bytes(Ether(**MACS) / IP(dst="10.0.0.1") / UDP(dport=1)), LinkType.ETHERNET)
    with pytest.raises(UsageError, match="more UDP flows than the 1 reader ports"):
        rewriter.rewrite_frame(bytes(Ether(**MACS) / IP(dst="10.0.0.1") / UDP(dport=2)), LinkType.ETHERNET)


def test_the_sandbox_of_a_target():
    link = Link("veth0", 3, 1500, WRITER_MAC, READER_MAC)
    target = Target("2001:2::1", "2001:2::2", (5001, 5002), link, vlan=9)
    rewriter = Rewriter.for_target(target)
    assert rewriter.sandbox == Endpoints(
        bytes.fromhex("020000000001"),
        bytes.fromhex("020000000002"),
        {6: (socket.inet_pton(socket.AF_INET6, "2001:2::1"), socket.inet_pton(socket.AF_INET6, "2001:2::2"))},
        9,
    )
    out = rewriter.rewrite_frame(bytes(Ether(**MACS) / IPv6() / UDP(dport=1) / Raw(b"z")), LinkType.ETHERNET)
    assert (out.port, Ether(out.frame)[Dot1Q].vlan) == (5001, 9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((WRITER_MAC, READER_MAC), "needs a \\(writer ip, reader ip\\) pair"),
        ((WRITER_MAC, READER_MAC, ("198.18.0.1", "2001:2::2")), "different IP versions"),
        ((WRITER_MAC, READER_MAC, V4, V4), "IPv4 addresses given twice"),
        (("nope", READER_MAC, V4), "writer mac 'nope' is not a MAC address"),
    ],
)
def test_sandbox_refusals(args, message):
    with pytest.raises(UsageError, match=message):
        make_endpoints(*args)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=2, max_size=80).filter(lambda b: len(b) % 2 == 0), st.data())
def test_update_checksum_equals_recomputing(data, draw):
    """RFC 1624 eqn. 3 over any changed run of words gives the checksum of the new data (0 and 0xFFFF
    being the two ones'-complement zeros)."""
    start = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    end = draw.draw(st.integers(start // 2 + 1, len(data) // 2)) * 2
    new_run = draw.draw(st.binary(min_size=end - start, max_size=end - start))
    changed = data[:start] + new_run + data[end:]
    updated = update_checksum(checksum(data), data[start:end], new_run)
    assert updated == checksum(changed) or {updated, checksum(changed)} == {0, 0xFFFF}
