"""FrameTemplate against the dpkt builders, for IPv4 and IPv6, tagged or not, with or without Ethernet,
and the layout it gives writers (headers, checksum base and offsets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import fixed_fields, frame_args, sized, template_for, without_link

from rawpacer.errors import UsageError
from rawpacer.headers import (
    FrameTemplate,
    build_fragments,
    build_frame,
    build_packet,
    frame_size,
    ones_sum,
    parse_frame,
    parse_packet,
)
from rawpacer.headers import checksum as checksum_module
from rawpacer.headers import template as template_module

any_frame_args = st.sampled_from([4, 6]).flatmap(lambda version: frame_args(version, tagged=None))
"""IPv4 or IPv6, with or without an 802.1Q tag."""


@settings(max_examples=250, deadline=None)
@given(any_frame_args, st.integers(0, 64))
def test_stamp_equals_build_frame(args: dict, offset: int) -> None:
    want = build_frame(**args)
    template = template_for(args)
    assert template.stamp(args["payload"]) == want
    assert template.stamp(bytearray(args["payload"])) == want
    assert template.stamp(memoryview(args["payload"])) == want
    buf = bytearray(b"\xaa" * (offset + len(want) + 3))
    assert template.stamp_into(buf, offset, args["payload"]) == len(want)
    assert buf[offset : offset + len(want)] == want
    assert buf[:offset] == b"\xaa" * offset and buf[offset + len(want) :] == b"\xaa" * 3
    parsed = parse_frame(want)
    assert parsed.payload == args["payload"] and parsed.checksums_ok
    assert (parsed.ip_version, parsed.vlan) == (template.ip_version, args.get("vlan"))


@settings(max_examples=120, deadline=None)
@given(any_frame_args)
def test_without_ethernet_equals_build_packet(args: dict) -> None:
    args = without_link(args)
    template = template_for(args, ethernet=False)
    want = build_packet(**args)
    assert template.stamp(args["payload"]) == want
    assert parse_packet(want).payload == args["payload"]


@settings(max_examples=100, deadline=None)
@given(any_frame_args)
def test_python_checksum_equals_build_frame(args: dict) -> None:
    """The pure-Python fallback gives the same frames as the C extension."""
    template = template_for(args)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(template_module, "ones_sum", checksum_module.python_ones_sum)
        assert template.stamp(args["payload"]) == build_frame(**args)


@settings(max_examples=200, deadline=None)
@given(any_frame_args, st.booleans())
def test_headers_and_sum_base_rebuild_the_stamped_frame(args: dict, ethernet: bool) -> None:
    """What a writer does with ``headers(n)`` and ``udp_sum_base(n)`` gives ``stamp``'s bytes."""
    if not ethernet:
        args = without_link(args)
    template = template_for(args, ethernet=ethernet)
    payload = args["payload"]
    n = len(payload)
    headers = template.headers(n)
    assert len(headers) == template.header_len == template.frame_len(n) - n
    at = template.udp_checksum_offset
    assert headers[at : at + 2] == b"\0\0" and at + 2 == template.header_len
    udp_checksum = (ones_sum(payload, template.udp_sum_base(n)) ^ 0xFFFF) or 0xFFFF
    frame = headers[:at] + udp_checksum.to_bytes(2, "big") + payload
    assert frame == template.stamp(payload)
    assert (
        template.frame_len(n)
        == len(frame)
        == frame_size(n, ethernet=ethernet, ip_version=template.ip_version, vlan=args.get("vlan"))
    )
    assert 0 < template.udp_sum_base(n) <= 0xFFFF


@pytest.mark.parametrize(
    ("src_ip", "extra", "version", "link_len", "header_len"),
    [
        ("198.18.0.1", {}, 4, 14, 42),
        ("198.18.0.1", {"vlan": 7}, 4, 18, 46),
        ("198.18.0.1", {"ethernet": False}, 4, 0, 28),
        ("2001:2::1", {}, 6, 14, 62),
        ("2001:2::1", {"vlan": 4094}, 6, 18, 66),
        ("2001:2::1", {"ethernet": False}, 6, 0, 48),
    ],
)
def test_layout_numbers(src_ip: str, extra: dict, version: int, link_len: int, header_len: int) -> None:
    template = FrameTemplate(5001, src_ip=src_ip, **extra)
    assert (template.ip_version, template.link_len, template.header_len) == (version, link_len, header_len)
    assert template.udp_checksum_offset == header_len - 2
    assert template.max_udp_payload == (65507 if version == 4 else 65527)
    frame = template.stamp(b"abc")
    ip_first_byte = frame[link_len]
    assert ip_first_byte >> 4 == version


def test_one_template_many_lengths() -> None:
    """More payload lengths than a template keeps headers for, in an order that revisits them."""
    for src_ip in ("198.18.0.1", "2001:2::1"):
        template = FrameTemplate(40000, src_ip=src_ip, vlan=3)
        for n in [*range(0, 300, 3), *range(0, 300, 7), 65507, 0, 1472]:
            payload = sized(n)
            assert template.stamp(payload) == build_frame(40000, payload, src_ip=src_ip, vlan=3), (src_ip, n)


@settings(max_examples=60, deadline=None)
@given(any_frame_args, st.integers(68, 9000))
def test_fragment_count_matches_fragments(args: dict, mtu: int) -> None:
    template = template_for(args)
    mtu = max(mtu, 1280) if template.ip_version == 6 else mtu
    fields = {k: v for k, v in fixed_fields(args).items() if k not in ("df", "ip_id")}
    frags = build_fragments(args["dport"], args["payload"], mtu, ip_id=9, **fields)
    assert template.fragment_count(len(args["payload"]), mtu) == len(frags)
    assert template.fragments(args["payload"], mtu, 9) == frags


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.headers(65508), "payload_len 65508 is out of range 0-65507"),
        (lambda t: t.udp_sum_base(-1), "payload_len -1 is out of range 0-65507"),
        (lambda t: t.frame_len("9"), "payload_len '9' is not an integer"),
        (lambda t: t.fragment_count(10, 67), "mtu 67 is out of range 68-65536"),
        (lambda t: t.stamp(bytes(65508)), "payload of 65508 bytes is too long (allowed: 0-65507)"),
    ],
)
def test_bad_lengths(call, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(FrameTemplate(40000))


def test_stamp_into_mmap() -> None:
    """A TX ring is an mmap: stamp_into writes into one as into a bytearray."""
    import mmap

    template = FrameTemplate(40000, src_ip="2001:2::1", dst_ip="2001:2::2")
    with mmap.mmap(-1, 4096) as ring:
        assert template.stamp_into(ring, 2048, b"hello") == 67
        assert ring[2048 : 2048 + 67] == template.stamp(b"hello")
