"""The per-protocol field tables: what derives from them, the checks Layout makes on a table, and each
table read against dpkt's own header classes (an independent description of the same bytes)."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawpacer.headers import build_fragments, build_frame, build_packet
from rawpacer.headers.ethernet import ETH_HLEN, ETHERNET
from rawpacer.headers.ipv4 import IP_DF, IP_MF, IP_OFFMASK, IPV4, IPV4_HLEN
from rawpacer.headers.ipv6 import FRAGMENT_HLEN, IPV6, IPV6_FRAGMENT, IPV6_HLEN
from rawpacer.headers.layout import Field, Layout
from rawpacer.headers.udp import UDP, UDP_CHECKSUM_OFFSET, UDP_HLEN
from rawpacer.headers.vlan import MAX_VLAN_ID, VLAN, VLAN_HLEN
from rawpacer.limits import MAX_PORT

TABLES = [ETHERNET, VLAN, IPV4, IPV6, IPV6_FRAGMENT, UDP]


def test_derived_sizes_formats_and_constants() -> None:
    assert (ETH_HLEN, VLAN_HLEN, IPV4_HLEN, IPV6_HLEN, FRAGMENT_HLEN, UDP_HLEN) == (14, 4, 20, 40, 8, 8)
    assert IPV4.struct.format == "!BBHHHBBHII"  # addresses are 32-bit words like any other
    assert IPV6.struct.format == "!IHBB16s16s"
    assert (UDP.struct.format, VLAN.struct.format, IPV6_FRAGMENT.struct.format) == ("!HHHH", "!HH", "!BBHI")
    assert (IP_DF, IP_MF, IP_OFFMASK) == (0x4000, 0x2000, 0x1FFF)
    assert (UDP_CHECKSUM_OFFSET, UDP["sport"].max, MAX_VLAN_ID) == (6, MAX_PORT, 4094)
    assert (IPV6["flow_label"].max, IPV6_FRAGMENT["id"].max, VLAN["priority"].max) == ((1 << 20) - 1, (1 << 32) - 1, 7)


def _values(layout: Layout) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries({name: st.integers(0, f.max) for name, f in layout.fields.items()})


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TABLES).flatmap(lambda layout: st.tuples(st.just(layout), _values(layout))))
def test_pack_unpack_round_trip(case: tuple[Layout, dict[str, int]]) -> None:
    layout, values = case
    packed = layout.pack(**values)
    assert len(packed) == layout.size
    assert layout.unpack_from(b"xx" + packed, 2) == values
    assert all(layout[name].place(value) & ~layout[name].mask == 0 for name, value in values.items())


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TABLES).flatmap(lambda layout: st.tuples(st.just(layout), _values(layout))))
def test_packer_equals_pack(case: tuple[Layout, dict[str, int]]) -> None:
    """The fast packer, varying each whole-word integer field in turn, packs what pack does."""
    layout, values = case
    for name, field in layout.fields.items():
        if field.bits or field.width not in (1, 2, 4):
            continue
        fixed = {k: v for k, v in values.items() if k != name}
        assert layout.packer((name,), **fixed)(values[name]) == layout.pack(**values)


def test_packer_composes_a_shared_word() -> None:
    """A word of several fields varies as a whole, its value composed with Field.place."""
    pack = IPV4.packer(("id", "frag_offset"), ttl=3)
    word = IPV4["mf"].place(1) | IPV4["frag_offset"].place(185)
    assert pack(7, word) == IPV4.pack(ttl=3, id=7, mf=1, frag_offset=185)
    with pytest.raises(ValueError, match="sharing"):
        IPV4.packer(("frag_offset",), df=1)
    with pytest.raises(ValueError, match="out of order"):
        IPV4.packer(("id", "total_length"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((Field("a", 0, 1), Field("b", 2, 1)), "word at offset 2 does not follow byte 1"),
        ((Field("a", 0, 2), Field("b", 0, 1, bits=4)), "does not follow byte 0 cleanly"),
        ((Field("a", 0, 1, bits=4, shift=4), Field("b", 0, 1, bits=4, shift=2)), "field b overlaps"),
        ((Field("a", 0, 1, bits=4, shift=4), Field("b", 0, 1, bits=3)), "bits 0x8 of word 0 unnamed"),
        ((Field("a", 0, 1), Field("a", 1, 1)), "duplicate field names"),
        ((Field("a", 0, 1, bits=9),), "field a overlaps its word"),
    ],
)
def test_bad_tables_refused(fields: tuple[Field, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Layout("T", *fields)


def test_pack_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="IPv4 header ttl 256 is out of range 0-255"):
        IPV4.pack(ttl=256)
    with pytest.raises(ValueError, match="IPv4 header has no field 'hop_limit'"):
        IPV4.pack(hop_limit=1)


def test_tables_read_dpkts_ipv4_udp_and_vlan() -> None:
    frame = build_frame(
        5001, b"hello", src_ip="198.18.0.1", dst_ip="198.18.0.2", ttl=7, ip_id=99, vlan=42, vlan_priority=5
    )
    eth = dpkt.ethernet.Ethernet(frame)
    tag, ip, udp = eth.vlan_tags[0], eth.data, eth.data.data
    assert ETHERNET.unpack_from(frame)["type"] == 0x8100
    assert VLAN.unpack_from(frame, ETH_HLEN) == {"priority": tag.pri, "dei": tag.cfi, "vid": tag.id, "type": tag.type}
    header = IPV4.unpack_from(frame, ETH_HLEN + VLAN_HLEN)
    assert (header["version"], header["ihl"], header["total_length"], header["id"]) == (ip.v, ip.hl, ip.len, ip.id)
    assert (header["df"], header["mf"], header["frag_offset"], header["ttl"]) == (ip.df, ip.mf, ip.offset, ip.ttl)
    assert (header["protocol"], header["checksum"], header["src"]) == (ip.p, ip.sum, int.from_bytes(ip.src, "big"))
    assert UDP.unpack_from(frame, ETH_HLEN + VLAN_HLEN + IPV4_HLEN) == {
        "sport": udp.sport,
        "dport": udp.dport,
        "length": udp.ulen,
        "checksum": udp.sum,
    }


def test_tables_read_dpkts_ipv6_and_fragment_header() -> None:
    addresses = {"src_ip": "2001:2::1", "dst_ip": "2001:2::2"}
    packet = build_packet(5001, b"hello", hop_limit=3, flow_label=0x54321, traffic_class=0xA5, **addresses)
    ip = dpkt.ip6.IP6(packet)
    header = IPV6.unpack_from(packet)
    assert (header["version"], header["traffic_class"], header["flow_label"]) == (ip.v, ip.fc, ip.flow)
    assert (header["payload_length"], header["next_header"], header["hop_limit"]) == (ip.plen, ip.nxt, ip.hlim)
    assert IPV6["dst"].raw(packet) == ip.dst
    fragment = build_fragments(5001, bytes(3000), 1500, ip_id=0xCAFE, ethernet=False, **addresses)[1]
    ext = dpkt.ip6.IP6(fragment).extension_hdrs[44]
    values = IPV6_FRAGMENT.unpack_from(fragment, IPV6_HLEN)
    assert (values["next_header"], values["offset"], values["more"], values["id"]) == (
        ext.nxt,
        ext.frag_off,
        ext.m_flag,
        ext.id,
    )
