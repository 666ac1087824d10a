"""Builders, FrameTemplate, MTU fitting and fragmentation, checked against scapy's dissection."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, defragment
from scapy.layers.l2 import Ether
from strategies import frame_args, scapy_packet, sized, template_for, without_link

from rawpacer.errors import UsageError
from rawpacer.headers import (
    MAX_UDP_PAYLOAD,
    FrameTemplate,
    build_fragments,
    build_frame,
    build_packet,
    fit_payload,
    max_payload,
    parse_frame,
    reassemble,
    trimmed_bytes,
)


def assert_scapy_agrees(pkt: Ether | IP, args: dict) -> None:
    """Fields as asked, and scapy's own recomputed checksums equal ours."""
    ip, udp = pkt[IP], pkt[UDP]
    assert (ip.src, ip.dst, ip.ttl, ip.id, ip.proto) == (args["src_ip"], args["dst_ip"], args["ttl"], args["ip_id"], 17)
    assert bool(ip.flags.DF) == args["df"] and not ip.flags.MF and ip.frag == 0
    assert (udp.sport, udp.dport, udp.len) == (args["sport"], args["dport"], 8 + len(args["payload"]))
    assert ip.len == 28 + len(args["payload"])
    assert bytes(udp.payload) == args["payload"]
    assert udp.chksum != 0
    raw = bytes(pkt)
    rebuilt = pkt.copy()
    del rebuilt[IP].chksum
    del rebuilt[UDP].chksum
    assert bytes(rebuilt) == raw


@settings(max_examples=150, deadline=None)
@given(frame_args())
def test_build_frame_dissected_by_scapy(args: dict) -> None:
    frame = build_frame(**args)
    pkt = Ether(frame)
    assert (pkt.src, pkt.dst, pkt.type) == (args["src_mac"], args["dst_mac"], 0x0800)
    assert_scapy_agrees(pkt, args)
    assert frame == bytes(scapy_packet(args))


@settings(max_examples=100, deadline=None)
@given(frame_args())
def test_build_packet_dissected_by_scapy(args: dict) -> None:
    packet = build_packet(**without_link(args))
    assert packet == build_frame(**args)[14:]
    assert_scapy_agrees(IP(packet), args)


def test_template_reused_for_many_payloads() -> None:
    template = FrameTemplate(40000, src_ip="198.18.0.1", dst_ip="198.18.0.2")
    for n in (0, 1, 2, 1471, 1472, 9000, MAX_UDP_PAYLOAD, 3):
        payload = sized(n)
        assert template.stamp(payload) == build_frame(40000, payload, src_ip="198.18.0.1", dst_ip="198.18.0.2")


def test_udp_checksum_zero_sent_as_ffff() -> None:
    """Search for a payload whose computed UDP checksum is 0: it must go out as 0xFFFF."""
    template = FrameTemplate(40000)
    for word in range(65536):
        payload = word.to_bytes(2, "big")
        frame = template.stamp(payload)
        if frame[40:42] == b"\xff\xff":
            break
    else:
        pytest.fail("no payload with a zero UDP checksum found")
    assert frame == build_frame(40000, payload)
    assert parse_frame(frame).udp_checksum_ok is True
    pkt = Ether(frame)
    del pkt[UDP].chksum
    assert bytes(pkt) == frame


# --- bad input -------------------------------------------------------------------------------

BAD = [
    ("dport", 70000, "dport 70000 is out of range 0-65535"),
    ("dport", -1, "dport -1 is out of range 0-65535"),
    ("dport", "80", "dport '80' is not an integer"),
    ("sport", 65536, "sport 65536 is out of range 0-65535"),
    ("sport", True, "sport True is not an integer"),
    ("ttl", 256, "ttl 256 is out of range 0-255"),
    ("ttl", -1, "ttl -1 is out of range 0-255"),
    ("ip_id", 65536, "ip_id 65536 is out of range 0-65535"),
    ("src_ip", "198.18.0.256", "src_ip '198.18.0.256' is not an IPv4 address"),
    ("dst_ip", "nowhere", "dst_ip 'nowhere' is not an IPv4 address"),
    ("dst_ip", 3323068417, "dst_ip 3323068417 is not an IPv4 address"),
    ("src_mac", "02:00:00:00:00", "src_mac '02:00:00:00:00' is not a MAC address"),
    ("dst_mac", "02:00:00:00:00:zz", "dst_mac '02:00:00:00:00:zz' is not a MAC address"),
    ("df", "yes", "df 'yes' is not a bool"),
    ("payload", "text", "payload of type str is not bytes-like"),
    ("payload", bytes(MAX_UDP_PAYLOAD + 1), "payload of 65508 bytes is too long (allowed: 0-65507)"),
]


def _call_all(field: str, value: object) -> list[Callable[[], object]]:
    """Every public builder called with ``field`` set to ``value`` (skipping builders without it)."""
    args = {"dport": 40000, "payload": b"x", field: value}
    fixed = {k: v for k, v in args.items() if k not in ("dport", "payload")}
    calls = [lambda: build_frame(**args), lambda: FrameTemplate(args["dport"], **fixed).stamp(args["payload"])]
    if field != "df":
        calls.append(lambda: build_fragments(mtu=1500, **args))
    if not field.endswith("_mac"):
        calls.append(lambda: build_packet(**args))
    return calls


@pytest.mark.parametrize(("field", "value", "message"), BAD, ids=[f"{f}={str(v)[:20]}" for f, v, _ in BAD])
def test_bad_input_names_field_and_value(field: str, value: object, message: str) -> None:
    for call in _call_all(field, value):
        with pytest.raises(UsageError) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert message in str(info.value)


def test_stamp_into_too_small_buffer() -> None:
    template = FrameTemplate(40000)
    with pytest.raises(UsageError, match="frame of 142 bytes at offset 10 does not fit a 150-byte buffer"):
        template.stamp_into(bytearray(150), 10, bytes(100))
    with pytest.raises(UsageError, match="offset -1"):
        template.stamp_into(bytearray(150), -1, bytes(10))


def test_fragments_bad_ip_id_and_mtu() -> None:
    with pytest.raises(UsageError, match="ip_id 65536 is out of range 0-65535"):
        FrameTemplate(40000).fragments(b"x", 1500, 65536)
    with pytest.raises(UsageError, match="mtu 67 is out of range 68-65536"):
        FrameTemplate(40000).fragments(b"x", 67, 1)


# --- MTU fitting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mtu", "fits"), [(68, 40), (576, 548), (1500, 1472), (9000, 8972), (65535, 65507), (65536, 65507)]
)
def test_max_payload_and_fit(mtu: int, fits: int) -> None:
    assert max_payload(mtu) == fits
    message = sized(70000)
    assert fit_payload(message, mtu) == message[:fits]
    assert fit_payload(message[:fits], mtu) == message[:fits]
    assert fit_payload(bytearray(message[:10]), mtu) == message[:10]
    assert trimmed_bytes(1500, mtu) == max(0, 1500 - fits)
    assert trimmed_bytes(70000, mtu) == 70000 - fits
    assert len(build_frame(40000, fit_payload(message, mtu))) - 14 <= mtu


@pytest.mark.parametrize("mtu", [67, 65537, 0, -1])
def test_mtu_out_of_range(mtu: int) -> None:
    for call in (lambda: max_payload(mtu), lambda: fit_payload(b"x", mtu), lambda: trimmed_bytes(10, mtu)):
        with pytest.raises(UsageError, match=f"mtu {mtu} is out of range 68-65536"):
            call()


def test_fit_payload_refuses_text() -> None:
    with pytest.raises(UsageError, match="payload of type str"):
        fit_payload("text", 1500)


# --- fragmentation ---------------------------------------------------------------------------

mtus = st.one_of(st.integers(68, 1600), st.sampled_from([68, 576, 1500, 9000, 65535, 65536]))


@settings(max_examples=120, deadline=None)
@given(frame_args(), mtus)
def test_fragments_follow_rfc791_and_reassemble(args: dict, mtu: int) -> None:
    args = {**args, "df": False}
    frags = build_fragments(mtu=mtu, **{k: v for k, v in args.items() if k != "df"})
    assert template_for(args).fragments(args["payload"], mtu, args["ip_id"]) == frags
    whole = build_frame(**args)
    assert reassemble(reversed(frags)) == whole
    offset = 0
    for i, frame in enumerate(frags):
        pkt = Ether(frame)
        ip = pkt[IP]
        assert ip.len <= mtu and len(frame) == 14 + ip.len
        assert ip.frag * 8 == offset and ip.id == args["ip_id"] and not ip.flags.DF
        assert bool(ip.flags.MF) == (i < len(frags) - 1)
        if ip.flags.MF:
            assert (ip.len - 20) % 8 == 0
        offset += ip.len - 20
        rebuilt = pkt.copy()
        del rebuilt[IP].chksum
        assert bytes(rebuilt)[:34] == frame[:34]
    assert offset == 8 + len(args["payload"])
    assert len(frags) == 1 or len(whole) - 14 > mtu


@settings(max_examples=40, deadline=None)
@given(frame_args(), st.integers(68, 2000))
def test_fragments_reassembled_by_scapy(args: dict, mtu: int) -> None:
    args = {**args, "df": False}
    frags = build_fragments(mtu=mtu, ethernet=False, **without_link({k: v for k, v in args.items() if k != "df"}))
    assert template_for(without_link(args), ethernet=False).fragments(args["payload"], mtu, args["ip_id"]) == frags
    (datagram,) = defragment([IP(f) for f in frags])
    assert datagram[UDP].dport == args["dport"]
    assert bytes(datagram[UDP].payload) == args["payload"]
    assert datagram[UDP].chksum == IP(build_packet(**without_link(args)))[UDP].chksum


def test_fragments_match_scapy_fragment() -> None:
    """Byte for byte what scapy's fragment() makes of the same whole datagram."""
    from scapy.layers.inet import fragment

    payload = sized(4000)
    whole = Ether(build_frame(40000, payload, src_ip="198.18.0.1", dst_ip="198.18.0.2", ip_id=77, df=False))
    ours = build_fragments(40000, payload, 1500, src_ip="198.18.0.1", dst_ip="198.18.0.2", ip_id=77)
    theirs = [bytes(f) for f in fragment(whole, fragsize=1480)]
    assert ours == theirs


def test_reassemble_refuses_gaps_and_mixes() -> None:
    frags = build_fragments(40000, bytes(3000), 1500, ip_id=5)
    other = build_fragments(40000, bytes(3000), 1500, ip_id=6)
    with pytest.raises(ValueError, match="does not follow"):
        reassemble([frags[0], frags[2]])
    with pytest.raises(ValueError, match="belongs to datagram"):
        reassemble([frags[0], other[1], frags[2]])
    with pytest.raises(ValueError, match="mf=True"):
        reassemble(frags[:2])
    with pytest.raises(ValueError, match="no fragments"):
        reassemble([])
