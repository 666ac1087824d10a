"""parse_frame / parse_packet / parse_fragment: round trips, every refusal is a ValueError, and fuzzing
finds no other, over IPv4, IPv6 (with and without the Fragment header) and 802.1Q-tagged frames."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import frame_args, without_link

from rawpacer.headers import build_fragments, build_frame, build_packet, parse_fragment, parse_frame, parse_packet
from rawpacer.headers.checksum import checksum

MACS = {"src_mac": "02:00:00:00:00:01", "dst_mac": "02:00:00:00:00:02"}
FRAME = build_frame(40000, b"hello", src_ip="198.18.0.1", dst_ip="198.18.0.2", ttl=9, ip_id=1234, **MACS)
V6 = {"src_ip": "2001:2::1", "dst_ip": "2001:2::2", **MACS}
FRAME_V6 = build_frame(40000, b"hello", hop_limit=9, flow_label=0xABCDE, traffic_class=0x12, **V6)
TAGGED = build_frame(40000, b"hello", vlan=100, vlan_priority=6, vlan_dei=True, **V6)
FRAGMENT_V6 = build_fragments(40000, bytes(1600), 1280, ip_id=0xDEADBEEF, **V6)[1]
SAMPLES = [FRAME, FRAME_V6, TAGGED, FRAGMENT_V6]


def parses_or_value_error(data: bytes) -> None:
    """The only failure allowed is ValueError; both entry points are tried."""
    for parse in (parse_frame, parse_packet, parse_fragment):
        try:
            parse(data)
        except ValueError:
            pass


def with_ip_checksum(frame: bytearray) -> bytes:
    """``frame`` with its IPv4 header checksum recomputed after an edit."""
    ihl = (frame[14] & 0x0F) * 4
    frame[24:26] = b"\0\0"
    frame[24:26] = checksum(bytes(frame[14 : 14 + ihl])).to_bytes(2, "big")
    return bytes(frame)


@settings(max_examples=200, deadline=None)
@given(frame_args())
def test_round_trip(args: dict) -> None:
    parsed = parse_frame(build_frame(**args))
    assert parsed.payload == args["payload"]
    assert (parsed.src_mac, parsed.dst_mac, parsed.src_ip, parsed.dst_ip) == (
        args["src_mac"],
        args["dst_mac"],
        args["src_ip"],
        args["dst_ip"],
    )
    assert (parsed.sport, parsed.dport, parsed.ttl, parsed.ip_id, parsed.df) == (
        args["sport"],
        args["dport"],
        args["ttl"],
        args["ip_id"],
        args["df"],
    )
    assert (parsed.mf, parsed.frag_offset) == (False, 0)
    assert parsed.ip_len == 28 + len(args["payload"]) and parsed.udp_len == 8 + len(args["payload"])
    assert parsed.ip_checksum_ok and parsed.udp_checksum_ok
    packet = parse_packet(build_packet(**without_link(args)))
    assert packet.src_mac is None and packet.payload == args["payload"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([0, 14, 18, 34, 54, 62]), st.sampled_from(SAMPLES))
def test_arbitrary_bytes_only_value_error(data: bytes, keep: int, sample: bytes) -> None:
    parses_or_value_error(data)
    parses_or_value_error(sample[:keep] + data)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    st.integers(0, 200),
)
def test_mutated_frames_only_value_error(sample: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    frame = bytearray(sample + b"\0\0\0\0")
    for i, value in edits:
        frame[i % len(frame)] = value
    parses_or_value_error(bytes(frame[:cut]))
    if sample is FRAME:
        parses_or_value_error(with_ip_checksum(frame[: max(cut, 34)]))


def test_checksum_errors_are_reported_not_raised() -> None:
    bad_ip = bytearray(FRAME)
    bad_ip[24] ^= 0xFF
    assert parse_frame(bytes(bad_ip)).ip_checksum_ok is False
    bad_udp = bytearray(FRAME)
    bad_udp[-1] ^= 0x01
    assert parse_frame(bytes(bad_udp)).udp_checksum_ok is False
    no_udp = bytearray(FRAME)
    no_udp[40:42] = b"\0\0"
    assert parse_frame(bytes(no_udp)).udp_checksum_ok is None


def test_ethernet_padding_ignored() -> None:
    assert parse_frame(FRAME + bytes(20)).payload == b"hello"


def test_ip_options_skipped() -> None:
    ip = bytearray(FRAME[14:])
    options = b"\x01\x01\x01\x00"
    ip[0] = 0x46
    ip[2:4] = struct.pack("!H", len(ip) + 4)
    frame = with_ip_checksum(bytearray(FRAME[:14]) + ip[:20] + options + ip[20:])
    parsed = parse_frame(frame)
    assert parsed.payload == b"hello" and parsed.ip_checksum_ok and parsed.udp_checksum_ok


def _edit(offset: int, raw: bytes, sample: bytes = FRAME) -> bytes:
    """``sample`` with ``raw`` written at ``offset`` (and, for the IPv4 frame, its header checksum redone)."""
    frame = bytearray(sample)
    frame[offset : offset + len(raw)] = raw
    return with_ip_checksum(frame) if sample is FRAME else bytes(frame)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Ethernet header truncated"),
        (FRAME[:20], "IPv4 header truncated"),
        (_edit(12, b"\x08\x06"), "ethertype 0x0806 is not IPv4 (0x0800), IPv6 (0x86dd) or one 802.1Q tag (0x8100)"),
        (_edit(12, b"\x86\xdd"), "IPv6 header truncated: 33 bytes, need 40"),
        (_edit(14, b"\x65"), "IP version 6 is not 4"),
        (_edit(14, b"\x44"), "IPv4 header length 16 is below 20"),
        (_edit(14, b"\x4f"), "IPv4 total length"),
        (_edit(16, b"\xff\xff"), "IPv4 total length 65535"),
        (_edit(16, b"\x00\x1b"), "UDP header truncated"),
        (_edit(23, b"\x06"), "IP protocol 6 is not UDP"),
        (_edit(38, b"\x00\x07"), "UDP length 7"),
        (_edit(38, b"\x00\x0e"), "UDP length 14"),
        (_edit(20, b"\x20\x00"), "IPv4 fragment (mf=True, offset=0)"),
        (_edit(20, b"\x00\x01"), "IPv4 fragment (mf=False, offset=8)"),
        (FRAME_V6[:50], "IPv6 header truncated: 36 bytes, need 40"),
        (_edit(14, b"\x40", FRAME_V6), "IP version 4 is not 6"),
        (_edit(18, b"\xff\xff", FRAME_V6), "IPv6 payload length 65535 does not fit 13 captured bytes"),
        (_edit(20, b"\x06", FRAME_V6), "IPv6 next header 6 is not UDP (17) or Fragment (44)"),
        (_edit(18, b"\x00\x04\x2c", FRAME_V6), "IPv6 Fragment header truncated: 4 bytes, need 8"),
        (_edit(58, b"\x00\x07", FRAME_V6), "UDP length 7 does not fit the 13-byte IP payload"),
        (FRAGMENT_V6, "IPv6 fragment (mf=False, offset=1232)"),
        (_edit(54, b"\x3a", FRAGMENT_V6), "IPv6 next header 58 is not UDP (17)"),
        (TAGGED[:16], "802.1Q tag truncated: 2 bytes, need 4"),
        (_edit(16, b"\x81\x00", TAGGED), "ethertype 0x8100 is not IPv4"),
        ("text", "data of type str is not bytes-like"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_refusals(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_frame(data)


def test_packet_of_another_ip_version_refused() -> None:
    with pytest.raises(ValueError, match="IP version 5 is not 4 or 6"):
        parse_packet(b"\x50" * 40)


def test_ipv6_fragment_info_exposed() -> None:
    frags = build_fragments(40000, bytes(3000), 1500, ip_id=0xDEADBEEF, vlan=9, **V6)
    parts = [parse_fragment(f) for f in frags]
    assert [(p.mf, p.frag_offset, p.ip_id) for p in parts] == [
        (True, 0, 0xDEADBEEF),
        (True, 1448, 0xDEADBEEF),
        (False, 2896, 0xDEADBEEF),
    ]
    assert all(p.ip_checksum_ok is None and p.vlan == 9 and p.ip_version == 6 for p in parts)
    assert [len(p.data) for p in parts] == [1448, 1448, 112] and [p.ip_len for p in parts] == [1496, 1496, 160]


def test_atomic_fragment_is_a_whole_datagram() -> None:
    """RFC 8200 section 4.5 / RFC 6946: a Fragment header with offset 0 and M clear is the whole packet."""
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment

    packet = bytes(IPv6(src="2001:2::1", dst="2001:2::2") / IPv6ExtHdrFragment(id=7) / UDP(sport=1, dport=2) / b"hi")
    parsed = parse_packet(packet)
    assert (parsed.payload, parsed.ip_id, parsed.udp_checksum_ok, parsed.ip_len) == (b"hi", 7, True, len(packet))


def test_fragment_info_exposed() -> None:
    frags = build_fragments(40000, bytes(3000), 1500, src_ip="198.18.0.1", dst_ip="198.18.0.2", ip_id=42)
    parts = [parse_fragment(f) for f in frags]
    assert [(p.mf, p.frag_offset, p.ip_id) for p in parts] == [(True, 0, 42), (True, 1480, 42), (False, 2960, 42)]
    assert all(p.ip_checksum_ok and not p.df for p in parts)
    assert sum(len(p.data) for p in parts) == 3008


def test_memoryview_input() -> None:
    assert parse_frame(memoryview(FRAME)).payload == b"hello"
    assert parse_frame(memoryview(FRAME + b"x")[::1]).payload == b"hello"
