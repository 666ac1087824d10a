"""802.1Q tags on IPv4 and IPv6 frames: byte-identical to scapy's Dot1Q, read back by parse_frame,
kept through fragmenting and reassembly, and refused where they cannot be."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import Dot1Q, Ether
from strategies import frame_args, scapy_packet, template_for

from rawpacer.errors import UsageError
from rawpacer.headers import (
    FrameTemplate,
    build_fragments,
    build_frame,
    build_packet,
    frame_size,
    parse_fragment,
    parse_frame,
    reassemble,
)

CORPUS = Path(__file__).resolve().parent / "corpus" / "parse"

tagged_args = st.sampled_from([4, 6]).flatmap(lambda version: frame_args(version, tagged=True))


@settings(max_examples=150, deadline=None)
@given(tagged_args)
def test_tagged_frame_is_scapys_frame(args: dict) -> None:
    frame = build_frame(**args)
    assert frame == bytes(scapy_packet(args))
    pkt = Ether(frame)
    tag = pkt[Dot1Q]
    assert pkt.type == 0x8100
    assert (tag.vlan, tag.prio, tag.dei) == (args["vlan"], args["vlan_priority"], int(args["vlan_dei"]))
    assert tag.type == (0x86DD if "hop_limit" in args else 0x0800)
    parsed = parse_frame(frame)
    assert (parsed.vlan, parsed.vlan_priority, parsed.vlan_dei) == (
        args["vlan"],
        args["vlan_priority"],
        args["vlan_dei"],
    )
    assert parsed.payload == args["payload"] and parsed.checksums_ok
    assert len(frame) == frame_size(len(args["payload"]), ip_version=parsed.ip_version, vlan=args["vlan"])


def test_untagged_frame_reports_no_tag() -> None:
    parsed = parse_frame(build_frame(5001, b"x"))
    assert (parsed.vlan, parsed.vlan_priority, parsed.vlan_dei) == (None, None, None)


def test_corpus_tagged_frame_is_read() -> None:
    """The tagged frame the parser used to reject: VLAN 5, priority 0, over IPv4."""
    parsed = parse_frame((CORPUS / "vlan-tagged.bin").read_bytes())
    assert (parsed.vlan, parsed.vlan_priority, parsed.vlan_dei, parsed.ip_version) == (5, 0, False, 4)
    assert parsed.checksums_ok


def test_priority_tag() -> None:
    """VLAN id 0 is a priority tag: the frame belongs to no VLAN and carries only a priority."""
    frame = build_frame(5001, b"x", vlan=0, vlan_priority=5)
    assert Ether(frame)[Dot1Q].vlan == 0 and parse_frame(frame).vlan_priority == 5


@settings(max_examples=40, deadline=None)
@given(tagged_args, st.integers(1280, 3000))
def test_fragments_keep_the_tag(args: dict, mtu: int) -> None:
    fields = {k: v for k, v in args.items() if k not in ("df", "ip_id")}
    frags = build_fragments(mtu=mtu, ip_id=5, **fields)
    assert template_for(args).fragments(args["payload"], mtu, 5) == frags
    assert all(parse_fragment(f).vlan == args["vlan"] for f in frags)
    whole = {**fields, "ip_id": 5, "df": False} if "ttl" in args else fields  # IPv4 keeps the id, DF clear
    assert reassemble(frags) == build_frame(**whole)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vlan": 4095}, "vlan 4095 is out of range 0-4094 (0: a priority tag)"),
        ({"vlan": -1}, "vlan -1 is out of range 0-4094"),
        ({"vlan": "5"}, "vlan '5' is not an integer"),
        ({"vlan": True}, "vlan True is not an integer"),
        ({"vlan": 5, "vlan_priority": 8}, "vlan_priority 8 is out of range 0-7"),
        ({"vlan": 5, "vlan_dei": 1}, "vlan_dei 1 is not a bool"),
        ({"vlan_priority": 3}, "vlan_priority 3 needs a VLAN tag (give vlan=0-4094)"),
        ({"vlan_dei": True, "src_ip": "2001:2::1"}, "vlan_dei True needs a VLAN tag"),
    ],
)
def test_bad_tags(fields: dict, message: str) -> None:
    for call in (lambda: build_frame(40000, b"x", **fields), lambda: FrameTemplate(40000, **fields)):
        with pytest.raises(UsageError) as info:
            call()
        assert message in str(info.value)


def test_tag_needs_ethernet() -> None:
    message = "vlan 5 needs the Ethernet header (ethernet=True): the tag is part of it"
    for call in (
        lambda: build_packet(40000, b"x", vlan=5),
        lambda: FrameTemplate(40000, vlan=5, ethernet=False),
        lambda: build_fragments(40000, b"x", 1500, vlan=5, ethernet=False),
    ):
        with pytest.raises(UsageError) as info:
            call()
        assert str(info.value) == message
