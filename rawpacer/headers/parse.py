"""Dissect Ethernet [802.1Q] / IPv4 or IPv6 / UDP frames (and bare IP / UDP packets), checking checksums.

Anything that is not one whole, unfragmented UDP datagram in such a frame raises ValueError and
nothing else, whatever the bytes. Fragments are refused by ``parse_frame``; ``parse_fragment``
reads one, and ``rawpacer.headers.fragment.reassemble`` rebuilds the whole frame from them. Every
field is read through the header tables.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, fields
from typing import NamedTuple

from rawpacer.headers.checksum import BytesLike, ones_sum
from rawpacer.headers.ethernet import ETH_HLEN, ETHERNET
from rawpacer.headers.ipv4 import ETH_TYPE_IPV4, IPV4, IPV4_HLEN
from rawpacer.headers.ipv6 import ETH_TYPE_IPV6, FRAGMENT_HLEN, IP_PROTO_FRAGMENT, IPV6, IPV6_FRAGMENT, IPV6_HLEN
from rawpacer.headers.layout import Layout
from rawpacer.headers.udp import IP_PROTO_UDP, UDP, UDP_HLEN, pseudo_header_sum
from rawpacer.headers.vlan import ETH_TYPE_8021Q, VLAN, VLAN_HLEN

__all__ = ["ETH_TYPE_IPV4", "IP_PROTO_UDP"]  # re-exported from their tables' modules

_ADDRESS_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}


@dataclass(frozen=True, kw_only=True)
class IPInfo:
    """What a frame's link and IP headers say, shared by ``Fragment`` and ``ParsedFrame``.

    MACs and the VLAN fields are None without an Ethernet header (``parse_packet``); the VLAN
    fields are None for an untagged frame. ``ttl`` is IPv4's TTL or IPv6's hop limit. ``ip_id`` is
    IPv4's identification, or the IPv6 Fragment header's (0 without one). ``df`` is always False
    for IPv6 (it has no such flag) and ``ip_checksum_ok`` None (it has no header checksum).
    ``ip_len`` is the whole IP packet (IPv4 total length; IPv6 40 + payload length).
    """

    src_mac: str | None
    dst_mac: str | None
    vlan: int | None = None
    vlan_priority: int | None = None
    vlan_dei: bool | None = None
    ip_version: int = 4
    src_ip: str
    dst_ip: str
    ttl: int
    traffic_class: int = 0
    flow_label: int = 0
    ip_id: int
    df: bool
    mf: bool
    frag_offset: int
    ip_len: int
    ip_checksum_ok: bool | None

    @property
    def hop_limit(self) -> int:
        """IPv6's name for ``ttl``."""
        return self.ttl


@dataclass(frozen=True, kw_only=True)
class Fragment(IPInfo):
    """One datagram or fragment carrying UDP, before reassembly: ``data`` is what follows the IP
    header (and IPv6's Fragment header) and ``frag_offset`` is in bytes (the header field times 8)."""

    data: bytes


@dataclass(frozen=True, kw_only=True)
class ParsedFrame(IPInfo):
    """One whole UDP datagram's fields (``mf``/``frag_offset`` are always False/0 here).

    ``udp_checksum_ok`` is None when an IPv4 sender sent no UDP checksum (0); over IPv6 a 0 is
    invalid (RFC 8200, section 8.1), so it is False there.
    """

    sport: int
    dport: int
    udp_len: int
    udp_checksum_ok: bool | None
    payload: bytes

    @property
    def checksums_ok(self) -> bool:
        """True when no checksum present is wrong (and, over IPv6, the UDP checksum is present)."""
        return self.ip_checksum_ok is not False and self.udp_checksum_ok is not False


class _Link(NamedTuple):
    """The link fields of ``IPInfo``, by the same names."""

    src_mac: str | None = None
    dst_mac: str | None = None
    vlan: int | None = None
    vlan_priority: int | None = None
    vlan_dei: bool | None = None


def _read(layout: Layout, data: BytesLike, start: int, end: int | None = None) -> dict[str, int]:
    """The fields of the ``layout`` header at ``start``; ValueError when fewer bytes than it needs
    are there (before ``end``, by default the end of ``data``)."""
    avail = (len(data) if end is None else end) - start
    if avail < layout.size:
        raise ValueError(f"{layout.name} truncated: {avail} bytes, need {layout.size}")
    return layout.unpack_from(data, start)


def _ethernet(data: BytesLike) -> tuple[int, int, _Link]:
    """The Ethernet header (and one 802.1Q tag): where the IP header starts, its ethertype, the link fields."""
    ethertype, start = _read(ETHERNET, data, 0)["type"], ETH_HLEN
    link = _Link(ETHERNET["src"].raw(data).hex(":"), ETHERNET["dst"].raw(data).hex(":"))
    if ethertype == ETH_TYPE_8021Q:
        tag = _read(VLAN, data, ETH_HLEN)
        ethertype, start = tag["type"], start + VLAN_HLEN
        link = link._replace(vlan=tag["vid"], vlan_priority=tag["priority"], vlan_dei=bool(tag["dei"]))
    return start, ethertype, link


def _address(version: int, data: BytesLike, base: int, field: str) -> str:
    layout = IPV4 if version == 4 else IPV6
    return socket.inet_ntop(_ADDRESS_FAMILY[version], layout[field].raw(data, base))


def _ipv4(data: BytesLike, start: int, link: _Link) -> Fragment:
    ip, avail = _read(IPV4, data, start), len(data) - start
    if ip["version"] != 4:
        raise ValueError(f"IP version {ip['version']} is not 4")
    ihl, ip_len = ip["ihl"] * 4, ip["total_length"]
    if ihl < IPV4_HLEN:
        raise ValueError(f"IPv4 header length {ihl} is below {IPV4_HLEN}")
    if not ihl <= ip_len <= avail:
        raise ValueError(f"IPv4 total length {ip_len} does not fit header {ihl} and {avail} captured bytes")
    if ip["protocol"] != IP_PROTO_UDP:
        raise ValueError(f"IP protocol {ip['protocol']} is not UDP ({IP_PROTO_UDP})")
    return Fragment(
        **link._asdict(),
        src_ip=_address(4, data, start, "src"),
        dst_ip=_address(4, data, start, "dst"),
        ttl=ip["ttl"],
        ip_id=ip["id"],
        df=bool(ip["df"]),
        mf=bool(ip["mf"]),
        frag_offset=ip["frag_offset"] * 8,
        ip_len=ip_len,
        ip_checksum_ok=ones_sum(data[start : start + ihl]) == 0xFFFF,
        data=bytes(data[start + ihl : start + ip_len]),
    )


def _ipv6(data: BytesLike, start: int, link: _Link) -> Fragment:
    ip = _read(IPV6, data, start)
    if ip["version"] != 6:
        raise ValueError(f"IP version {ip['version']} is not 6")
    body, end = start + IPV6_HLEN, start + IPV6_HLEN + ip["payload_length"]
    if end > len(data):
        raise ValueError(f"IPv6 payload length {ip['payload_length']} does not fit {len(data) - body} captured bytes")
    following, fragment = ip["next_header"], {"more": 0, "offset": 0, "id": 0}
    if following == IP_PROTO_FRAGMENT:
        fragment = _read(IPV6_FRAGMENT, data, body, end)
        following, body = fragment["next_header"], body + FRAGMENT_HLEN
    if following != IP_PROTO_UDP:
        raise ValueError(f"IPv6 next header {following} is not UDP ({IP_PROTO_UDP}) or Fragment ({IP_PROTO_FRAGMENT})")
    return Fragment(
        **link._asdict(),
        ip_version=6,
        src_ip=_address(6, data, start, "src"),
        dst_ip=_address(6, data, start, "dst"),
        ttl=ip["hop_limit"],
        traffic_class=ip["traffic_class"],
        flow_label=ip["flow_label"],
        ip_id=fragment["id"],
        df=False,
        mf=bool(fragment["more"]),
        frag_offset=fragment["offset"] * 8,
        ip_len=end - start,
        ip_checksum_ok=None,
        data=bytes(data[body:end]),
    )


def _whole(frag: Fragment) -> ParsedFrame:
    if frag.mf or frag.frag_offset:
        raise ValueError(
            f"IPv{frag.ip_version} fragment (mf={frag.mf}, offset={frag.frag_offset}): reassemble() it first"
        )
    seg = frag.data
    udp = _read(UDP, seg, 0)
    udp_len, udp_sum = udp["length"], udp["checksum"]
    if not UDP_HLEN <= udp_len <= len(seg):
        raise ValueError(f"UDP length {udp_len} does not fit the {len(seg)}-byte IP payload")
    udp_ok: bool | None = None if frag.ip_version == 4 else False  # RFC 768 allows 0 (none); RFC 8200 8.1 does not
    if udp_sum:
        family = _ADDRESS_FAMILY[frag.ip_version]
        pseudo = pseudo_header_sum(
            socket.inet_pton(family, frag.src_ip), socket.inet_pton(family, frag.dst_ip), udp_len
        )
        udp_ok = ones_sum(seg[:udp_len], pseudo) == 0xFFFF
    return ParsedFrame(
        **{f.name: getattr(frag, f.name) for f in fields(IPInfo)},
        sport=udp["sport"],
        dport=udp["dport"],
        udp_len=udp_len,
        udp_checksum_ok=udp_ok,
        payload=seg[UDP_HLEN:udp_len],
    )


def _bytes_like(data: object) -> BytesLike:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"data of type {type(data).__name__} is not bytes-like")  # noqa: TRY004 - parsers raise only ValueError
    return bytes(data) if isinstance(data, memoryview) else data


_BY_ETHERTYPE = {ETH_TYPE_IPV4: _ipv4, ETH_TYPE_IPV6: _ipv6}
_BY_VERSION = {4: _ipv4, 6: _ipv6}


def parse_fragment(data: BytesLike, *, ethernet: bool = True) -> Fragment:
    """Dissect one Ethernet [802.1Q] / IP (or bare IP) datagram or fragment carrying UDP; ValueError otherwise."""
    data = _bytes_like(data)
    if ethernet:
        start, ethertype, link = _ethernet(data)
        parse = _BY_ETHERTYPE.get(ethertype)
        if parse is None:
            raise ValueError(
                f"ethertype 0x{ethertype:04x} is not IPv4 (0x{ETH_TYPE_IPV4:04x}), IPv6 (0x{ETH_TYPE_IPV6:04x}) "
                f"or one 802.1Q tag (0x{ETH_TYPE_8021Q:04x}) before either"
            )
        return parse(data, start, link)
    version = data[0] >> 4 if data else 4
    parse = _BY_VERSION.get(version)
    if parse is None:
        raise ValueError(f"IP version {version} is not 4 or 6")
    return parse(data, 0, _Link())


def parse_frame(data: BytesLike) -> ParsedFrame:
    """Dissect one whole Ethernet II [802.1Q] / IPv4 or IPv6 / UDP frame; ValueError for anything else (fragments too).

    Bytes after the IP packet's length (Ethernet padding) are ignored.
    """
    return _whole(parse_fragment(data, ethernet=True))


def parse_packet(data: BytesLike) -> ParsedFrame:
    """Dissect one whole IPv4 or IPv6 / UDP packet (no Ethernet header); ValueError for anything else."""
    return _whole(parse_fragment(data, ethernet=False))
