"""IPv6 (RFC 8200): builds byte-identical to scapy's, the mandatory UDP checksum, fitting at the 1280
floor, source fragmentation with the Fragment header against scapy's fragment6, and the family rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, defragment6, fragment6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from strategies import fixed_fields, frame_args, scapy_packet, sized, template_for, without_link

from rawpacer.errors import UsageError
from rawpacer.headers import (
    FrameTemplate,
    build_fragments,
    build_frame,
    build_packet,
    fit_payload,
    fragment_spans,
    frame_size,
    max_payload,
    parse_fragment,
    parse_frame,
    reassemble,
    trimmed_bytes,
)

V6 = {"src_ip": "2001:2::1", "dst_ip": "2001:2::2"}


def assert_scapy_reads(pkt: Ether | IPv6, args: dict) -> None:
    """scapy dissects the fields we meant, and rebuilding with its own lengths and checksum changes nothing."""
    ip, udp = pkt[IPv6], pkt[UDP]
    assert (ip.src, ip.dst) == (
        str(IPv6(src=args["src_ip"]).src),
        str(IPv6(dst=args["dst_ip"]).dst),
    )
    assert (ip.hlim, ip.fl, ip.tc, ip.nh, ip.plen) == (
        args["hop_limit"],
        args["flow_label"],
        args["traffic_class"],
        17,
        8 + len(args["payload"]),
    )
    assert (udp.sport, udp.dport, udp.len) == (args["sport"], args["dport"], 8 + len(args["payload"]))
    assert bytes(udp.payload) == args["payload"] and udp.chksum != 0
    rebuilt = pkt.copy()
    del rebuilt[IPv6].plen
    del rebuilt[UDP].chksum
    del rebuilt[UDP].len
    assert bytes(rebuilt) == bytes(pkt)


@settings(max_examples=150, deadline=None)
@given(frame_args(6))
def test_build_frame_is_scapys_frame(args: dict) -> None:
    frame = build_frame(**args)
    assert frame == bytes(scapy_packet(args))
    pkt = Ether(frame)
    assert (pkt.src, pkt.dst, pkt.type) == (args["src_mac"], args["dst_mac"], 0x86DD)
    assert_scapy_reads(pkt, args)


@settings(max_examples=100, deadline=None)
@given(frame_args(6))
def test_build_packet_is_scapys_packet(args: dict) -> None:
    packet = build_packet(**without_link(args))
    assert packet == build_frame(**args)[14:] == bytes(scapy_packet(args, ethernet=False))
    assert_scapy_reads(IPv6(packet), args)


@settings(max_examples=150, deadline=None)
@given(frame_args(6))
def test_parse_round_trip(args: dict) -> None:
    parsed = parse_frame(build_frame(**args))
    assert parsed.payload == args["payload"]
    assert (parsed.ip_version, parsed.sport, parsed.dport) == (6, args["sport"], args["dport"])
    assert (parsed.hop_limit, parsed.flow_label, parsed.traffic_class) == (
        args["hop_limit"],
        args["flow_label"],
        args["traffic_class"],
    )
    assert parsed.src_ip == IPv6(src=args["src_ip"]).src and parsed.dst_ip == IPv6(dst=args["dst_ip"]).dst
    assert (parsed.ip_checksum_ok, parsed.udp_checksum_ok, parsed.df, parsed.ip_id) == (None, True, False, 0)
    assert parsed.ip_len == 48 + len(args["payload"]) and parsed.udp_len == 8 + len(args["payload"])


def test_udp_checksum_zero_sent_as_ffff_and_received_zero_invalid() -> None:
    """RFC 8200 section 8.1: a computed 0 goes out as 0xFFFF; a received 0 is invalid."""
    template = FrameTemplate(40000, **V6)
    frames = (template.stamp(word.to_bytes(2, "big")) for word in range(65536))
    frame = next((f for f in frames if f[-4:-2] == b"\xff\xff"), None)  # a computed checksum is never 0xFFFF
    assert frame is not None, "no payload with a zero UDP checksum found"
    args = {"dport": 40000, "sport": 40101, "payload": frame[-2:], "hop_limit": 64, "flow_label": 0, "traffic_class": 0}
    args |= {"src_mac": "00:00:00:00:00:00", "dst_mac": "00:00:00:00:00:00", **V6}
    assert frame == build_frame(**args) == bytes(scapy_packet(args))
    assert parse_frame(frame).udp_checksum_ok is True
    unchecked = frame[:-4] + b"\0\0" + frame[-2:]
    assert parse_frame(unchecked).udp_checksum_ok is False
    assert not parse_frame(unchecked).checksums_ok
    ipv4 = build_frame(40000, frame[-2:])
    assert parse_frame(ipv4[:40] + b"\0\0" + ipv4[42:]).udp_checksum_ok is None


# --- MTU fitting -----------------------------------------------------------------------------


@pytest.mark.parametrize(("mtu", "fits"), [(1280, 1232), (1500, 1452), (9000, 8952), (65535, 65487), (65536, 65488)])
def test_max_payload(mtu: int, fits: int) -> None:
    assert max_payload(mtu, ip_version=6) == fits
    message = sized(70000)
    assert fit_payload(message, mtu, ip_version=6) == message[:fits]
    assert trimmed_bytes(1500, mtu, ip_version=6) == max(0, 1500 - fits)
    frame = build_frame(40000, fit_payload(message, mtu, ip_version=6), **V6)
    assert len(frame) - 14 == mtu == frame_size(fits, ip_version=6) - 14  # IPv6 payload length excludes its header


@pytest.mark.parametrize("mtu", [1279, 576, 68])
def test_mtu_below_1280_refused(mtu: int) -> None:
    message = f"mtu {mtu} is out of range 1280-65536 for IPv6, whose minimum link MTU is 1280"
    for call in (
        lambda: max_payload(mtu, ip_version=6),
        lambda: fit_payload(b"x", mtu, ip_version=6),
        lambda: fragment_spans(100, mtu, ip_version=6),
        lambda: build_fragments(40000, b"x", mtu, **V6),
        lambda: FrameTemplate(40000, **V6).fragments(b"x", mtu, 1),
    ):
        with pytest.raises(UsageError) as info:
            call()
        assert str(info.value) == message


def test_ip_version_must_be_4_or_6() -> None:
    with pytest.raises(UsageError, match="ip_version 5 is not 4 or 6"):
        max_payload(1500, ip_version=5)


# --- fragments -------------------------------------------------------------------------------

mtus = st.one_of(st.integers(1280, 3000), st.sampled_from([1280, 1500, 9000, 65535, 65536]))


@settings(max_examples=100, deadline=None)
@given(frame_args(6, tagged=None), mtus, st.integers(0, (1 << 32) - 1))
def test_fragments_follow_rfc8200_and_reassemble(args: dict, mtu: int, ident: int) -> None:
    frags = build_fragments(mtu=mtu, ip_id=ident, **args)
    assert template_for(args).fragments(args["payload"], mtu, ident) == frags
    whole = build_frame(**args)
    assert reassemble(reversed(frags)) == whole
    link = 18 if "vlan" in args else 14
    if len(frags) == 1:
        assert frags == [whole] and len(whole) - link <= mtu
        return
    offset = 0
    for i, frame in enumerate(frags):
        pkt = Ether(frame)
        ip, fragment = pkt[IPv6], pkt[IPv6ExtHdrFragment]
        assert (ip.nh, fragment.nh, fragment.id, fragment.offset * 8) == (44, 17, ident, offset)
        assert fragment.m == (i < len(frags) - 1) and fragment.res1 == fragment.res2 == 0
        assert len(frame) - link == 40 + ip.plen <= mtu
        data = ip.plen - 8
        assert data % 8 == 0 or not fragment.m
        offset += data
    assert offset == 8 + len(args["payload"])


def _scapy_fragments(args: dict, mtu: int, ident: int) -> list[bytes]:
    packet = IPv6(
        src=args["src_ip"], dst=args["dst_ip"], hlim=args["hop_limit"], fl=args["flow_label"], tc=args["traffic_class"]
    )
    packet /= IPv6ExtHdrFragment(id=ident) / UDP(sport=args["sport"], dport=args["dport"]) / Raw(args["payload"])
    return [bytes(p) for p in fragment6(packet, mtu)]


def _rules_agree(udp_len: int, mtu: int) -> bool:
    """Whether scapy's fragment6 cuts where rawpacer does (see ``check_against_fragment6``)."""
    if udp_len + 40 <= mtu or udp_len + 8 > 65535:
        return False
    step, last_most = (mtu - 48) // 8 * 8, mtu - 48
    remain = udp_len
    while remain > last_most:
        remain -= step
    return remain <= step


def _dissected(packets: list[bytes]) -> IPv6:
    """scapy's view of the whole packet: defragment6 of fragments, or the one packet as it is."""
    return defragment6([IPv6(p) for p in packets]) if len(packets) > 1 else IPv6(packets[0])


def check_against_fragment6(args: dict, mtu: int, ident: int) -> bool:
    """Our fragments against scapy's fragment6 of the same packet; True when compared byte for byte.

    The two follow RFC 8200 but make three different choices, and where one shows, what the
    fragments carry (scapy's reassembly of each) is compared instead of their bytes:
    - fragment6 always adds a Fragment header, so a packet that fits the MTU becomes an "atomic
      fragment" (RFC 6946), and it counts that header when deciding whether the packet fits;
      rawpacer sends a packet that fits whole, as build_frame does.
    - fragment6 lets the last fragment carry up to mtu - 48 bytes (as Linux's ip6_fragment does);
      rawpacer keeps one rule for IPv4 and IPv6, every fragment but the last carries
      (mtu - 48) // 8 * 8 bytes, which can leave one more, short, last fragment.
    - fragment6 counts the Fragment header in the 65535-byte payload limit and returns nothing for
      a UDP datagram over 65527 bytes; RFC 8200 limits the original packet, which has no Fragment
      header, so rawpacer fragments up to 65535.
    """
    fields = without_link(fixed_fields(args))
    ours = build_fragments(args["dport"], args["payload"], mtu, ip_id=ident, ethernet=False, **fields)
    theirs = _scapy_fragments(args, mtu, ident)
    if _rules_agree(8 + len(args["payload"]), mtu):
        assert ours == theirs
        return True
    whole = IPv6(build_packet(**without_link(args)))
    assert all(parse_fragment(f, ethernet=False).ip_id == ident for f in ours if len(ours) > 1)
    for dissected in [_dissected(ours)] + ([_dissected(theirs)] if theirs else []):
        assert bytes(dissected[UDP].payload) == args["payload"]
        assert (dissected[UDP].chksum, dissected.hlim, dissected.fl, dissected.tc) == (
            whole[UDP].chksum,
            whole.hlim,
            whole.fl,
            whole.tc,
        )
    return False


@pytest.mark.parametrize(
    ("payload_len", "mtu", "byte_for_byte"),
    [
        (2992, 1500, True),  # a 3000-byte datagram: 1448 + 1448 + 104 both ways
        (2898, 1500, True),  # 2906: 1448 + 1448 + 10 both ways
        (5000, 1280, True),  # 1280 - 48 = 1232 is a multiple of 8: the two rules are one
        (1442, 1500, False),  # fits: whole here, an atomic fragment from fragment6
        (1447, 1500, False),  # 1455 + 40 fits: whole here; fragment6 counts its Fragment header, splits 1448 + 7
        (2892, 1500, False),  # 2900: 1448 + 1448 + 4 here, 1448 + 1452 from fragment6
        (65527, 9000, False),  # the largest datagram: fragment6 returns nothing for it
    ],
)
def test_fragments_against_scapy_fragment6(payload_len: int, mtu: int, byte_for_byte: bool) -> None:
    args = {
        "dport": 5001,
        "sport": 40101,
        "payload": sized(payload_len),
        "hop_limit": 9,
        "flow_label": 5,
        "traffic_class": 3,
        **V6,
    }
    assert check_against_fragment6(args, mtu, 77) == byte_for_byte


@settings(max_examples=60, deadline=None)
@given(frame_args(6), st.integers(1280, 2000), st.integers(0, (1 << 32) - 1))
def test_fragments_against_scapy_fragment6_property(args: dict, mtu: int, ident: int) -> None:
    check_against_fragment6(args, mtu, ident)


# --- family rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"src_ip": "198.18.0.1", "dst_ip": "2001:2::2"},
            "src_ip '198.18.0.1' is IPv4 but dst_ip '2001:2::2' is IPv6 (use one family)",
        ),
        (
            {"src_ip": "2001:2::1", "dst_ip": "198.18.0.2"},
            "src_ip '2001:2::1' is IPv6 but dst_ip '198.18.0.2' is IPv4 (use one family)",
        ),
        ({**V6, "ttl": 9}, "ttl 9 is IPv4-only and this packet is IPv6 (src_ip '2001:2::1'); use hop_limit"),
        ({**V6, "df": False}, "df False is IPv4-only and this packet is IPv6 (src_ip '2001:2::1'): only the source"),
        ({"dst_ip": "2001:2::2", "ip_id": 3}, "ip_id 3 is IPv4-only and this packet is IPv6 (dst_ip '2001:2::2')"),
        ({"hop_limit": 3}, "hop_limit 3 is IPv6-only and this packet is IPv4 (by default); use ttl"),
        (
            {"src_ip": "198.18.0.1", "flow_label": 1},
            "flow_label 1 is IPv6-only and this packet is IPv4 (src_ip '198.18.0.1')",
        ),
        ({"traffic_class": 0}, "traffic_class 0 is IPv6-only and this packet is IPv4"),
        ({**V6, "hop_limit": 256}, "hop_limit 256 is out of range 0-255"),
        ({**V6, "flow_label": 1 << 20}, "flow_label 1048576 is out of range 0-1048575"),
        ({**V6, "traffic_class": -1}, "traffic_class -1 is out of range 0-255"),
        (
            {"src_ip": "2001:2::g"},
            "src_ip '2001:2::g' is not an IPv4 address like 198.18.0.1 or an IPv6 address like 2001:2::1",
        ),
    ],
)
def test_family_rules(fields: dict, message: str) -> None:
    for call in (
        lambda: build_frame(40000, b"x", **fields),
        lambda: build_packet(40000, b"x", **fields),
        lambda: FrameTemplate(40000, **fields),
    ):
        with pytest.raises(UsageError) as info:
            call()
        assert isinstance(info.value, ValueError) and message in str(info.value)
        assert "\n" not in str(info.value)


def test_one_address_sets_the_family() -> None:
    """The other address defaults to the loopback of the family given."""
    assert parse_frame(build_frame(1, b"", src_ip="2001:2::1")).dst_ip == "::1"
    assert parse_frame(build_frame(1, b"", dst_ip="2001:2::2")).src_ip == "::1"
    assert parse_frame(build_frame(1, b"")).src_ip == "127.0.0.1"


def test_fragment_ids_are_32_bits_for_ipv6() -> None:
    frags = build_fragments(40000, bytes(3000), 1500, ip_id=(1 << 32) - 1, **V6)
    assert {parse_fragment(f).ip_id for f in frags} == {(1 << 32) - 1}
    for call in (
        lambda: build_fragments(40000, b"x", 1500, ip_id=1 << 32, **V6),
        lambda: FrameTemplate(40000, **V6).fragments(b"x", 1500, 1 << 32),
    ):
        with pytest.raises(UsageError, match="ip_id 4294967296 is out of range 0-4294967295"):
            call()
    with pytest.raises(UsageError, match="ip_id 65536 is out of range 0-65535"):
        build_fragments(40000, b"x", 1500, ip_id=1 << 16)


def test_payload_limit_is_65527() -> None:
    frame = build_frame(40000, bytes(65527), **V6)
    assert parse_frame(frame).payload == bytes(65527)
    with pytest.raises(UsageError, match=r"payload of 65528 bytes is too long \(allowed: 0-65527\)"):
        FrameTemplate(40000, **V6).stamp(bytes(65528))
