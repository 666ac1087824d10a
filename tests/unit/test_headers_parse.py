"""parse_frame / parse_packet: round trips, every refusal is a ValueError, and fuzzing finds no other."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_headers import frame_args, without_macs

from rawpacer.headers import build_fragments, build_frame, build_packet, parse_fragment, parse_frame, parse_packet
from rawpacer.headers.checksum import checksum

FRAME = build_frame(
    40000,
    b"hello",
    src_ip="198.18.0.1",
    dst_ip="198.18.0.2",
    src_mac="02:00:00:00:00:01",
    dst_mac="02:00:00:00:00:02",
    ttl=9,
    ip_id=1234,
)


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
    packet = parse_packet(build_packet(**without_macs(args)))
    assert packet.src_mac is None and packet.payload == args["payload"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_value_error(data: bytes) -> None:
    parses_or_value_error(data)
    parses_or_value_error(FRAME[:14] + data)
    parses_or_value_error(FRAME[:34] + data)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(FRAME) - 1), st.integers(0, 255)), max_size=6), st.integers(0, len(FRAME) + 4)
)
def test_mutated_frames_only_value_error(edits: list[tuple[int, int]], cut: int) -> None:
    frame = bytearray(FRAME + b"\0\0\0\0")
    for i, value in edits:
        frame[i] = value
    parses_or_value_error(bytes(frame[:cut]))
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


def _edit(offset: int, raw: bytes) -> bytes:
    frame = bytearray(FRAME)
    frame[offset : offset + len(raw)] = raw
    return with_ip_checksum(frame)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Ethernet header truncated"),
        (FRAME[:20], "IPv4 header truncated"),
        (_edit(12, b"\x86\xdd"), "ethertype 0x86dd is not IPv4"),
        (_edit(12, b"\x81\x00"), "ethertype 0x8100 is not IPv4"),
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
        ("text", "data of type str is not bytes-like"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_refusals(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_frame(data)


def test_fragment_info_exposed() -> None:
    frags = build_fragments(40000, bytes(3000), 1500, src_ip="198.18.0.1", dst_ip="198.18.0.2", ip_id=42)
    parts = [parse_fragment(f) for f in frags]
    assert [(p.mf, p.frag_offset, p.ip_id) for p in parts] == [(True, 0, 42), (True, 1480, 42), (False, 2960, 42)]
    assert all(p.ip_checksum_ok and not p.df for p in parts)
    assert sum(len(p.data) for p in parts) == 3008


def test_memoryview_input() -> None:
    assert parse_frame(memoryview(FRAME)).payload == b"hello"
    assert parse_frame(memoryview(FRAME + b"x")[::1]).payload == b"hello"
