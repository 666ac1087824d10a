"""Build Ethernet II [+ 802.1Q] + IPv4/IPv6 + UDP frames (or bare IP + UDP packets) with dpkt.

These are the reference builders: slow (dpkt builds objects each call) but obviously right, and
independent of the header tables that ``FrameTemplate`` stamps from, so the tests can hold one to
the other. The IP version follows the addresses (``src_ip="2001:2::1"`` builds IPv6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dpkt

from rawpacer.headers.addresses import HeaderFields, check_payload, header_fields
from rawpacer.headers.checksum import BytesLike
from rawpacer.headers.family import V4, family_of
from rawpacer.headers.ipv6 import IP_PROTO_FRAGMENT
from rawpacer.headers.udp import IP_PROTO_UDP, UDP_HLEN

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack for **kwargs needs Python 3.12

    from rawpacer.headers.addresses import FieldArgs


def dpkt_ip(
    fields: HeaderFields, data: bytes | dpkt.Packet, *, ip_id: int, df: bool, mf: bool = False, offset: int = 0
) -> dpkt.ip.IP:
    """A dpkt IPv4 header carrying ``data`` (a UDP object, or raw bytes for a fragment); offset in 8-byte units."""
    return dpkt.ip.IP(
        src=fields.src_ip,
        dst=fields.dst_ip,
        ttl=fields.ttl,
        id=ip_id,
        p=dpkt.ip.IP_PROTO_UDP,
        df=int(df),
        mf=int(mf),
        offset=offset,
        data=data,
    )


def dpkt_ip6(
    fields: HeaderFields, data: bytes | dpkt.Packet, fragment: tuple[int, bool, int] | None = None
) -> dpkt.ip6.IP6:
    """A dpkt IPv6 header carrying ``data`` (a UDP object, or raw bytes after a Fragment header
    ``(offset in 8-byte units, more, identification)``)."""
    ip6 = dpkt.ip6.IP6(
        src=fields.src_ip,
        dst=fields.dst_ip,
        hlim=fields.ttl,
        fc=fields.traffic_class,
        flow=fields.flow_label,
        nxt=IP_PROTO_UDP,
        plen=len(data),
        data=data,
    )
    if fragment is not None:
        offset, more, ident = fragment
        ip6.all_extension_headers = [
            dpkt.ip6.IP6FragmentHeader(nxt=IP_PROTO_UDP, frag_off=offset, m_flag=int(more), id=ident)
        ]
        ip6.nxt, ip6.plen = IP_PROTO_FRAGMENT, ip6.plen + len(ip6.all_extension_headers[0])
    return ip6


def dpkt_udp(fields: HeaderFields, payload: BytesLike) -> dpkt.udp.UDP:
    """A dpkt UDP header carrying ``payload``; its checksum is filled in when the IP header is packed."""
    return dpkt.udp.UDP(sport=fields.sport, dport=fields.dport, ulen=UDP_HLEN + len(payload), data=bytes(payload))


def dpkt_ethernet(fields: HeaderFields, ip: dpkt.ip.IP | dpkt.ip6.IP6) -> dpkt.ethernet.Ethernet:
    """``ip`` wrapped in an Ethernet II header (with the 802.1Q tag when ``fields.vlan`` is set)."""
    ethernet = dpkt.ethernet.Ethernet(
        src=fields.src_mac, dst=fields.dst_mac, type=family_of(fields.src_ip).ethertype, data=ip
    )
    if fields.vlan is not None:
        tag = dpkt.ethernet.VLANtag8021Q(pri=fields.vlan_priority, cfi=int(fields.vlan_dei), id=fields.vlan)
        ethernet.vlan_tags = [tag]
    return ethernet


def dpkt_datagram(fields: HeaderFields, payload: object) -> tuple[dpkt.ip.IP | dpkt.ip6.IP6, dpkt.udp.UDP]:
    """The whole UDP datagram carrying ``payload`` in an IPv4 or IPv6 header, as the fields say, and its UDP part."""
    fam = family_of(fields.src_ip)
    udp = dpkt_udp(fields, check_payload(payload, fam.max_udp_payload))
    if fam is V4:
        return dpkt_ip(fields, udp, ip_id=fields.ip_id, df=fields.df), udp
    return dpkt_ip6(fields, udp), udp


def packed(top: dpkt.Packet, udp: dpkt.udp.UDP) -> bytes:
    """``top`` (an IP header or the Ethernet header around it) packed, with the UDP checksum dpkt fills in.

    A computed 0 is sent as 0xFFFF: dpkt does so over IPv4 (RFC 768) but not over IPv6, where 0 is
    invalid (RFC 8200, section 8.1), so the rare IPv6 datagram whose checksum is 0 is packed again.
    """
    raw = bytes(top)
    if udp.sum == 0:
        udp.sum = 0xFFFF
        raw = bytes(top)
    return raw


def build_frame(dport: int, payload: BytesLike, **fields: Unpack[FieldArgs]) -> bytes:
    """One Ethernet II [+ 802.1Q] + IPv4/IPv6 + UDP frame carrying ``payload`` to ``dport``, built with dpkt."""
    checked = header_fields(dport, **fields)
    ip, udp = dpkt_datagram(checked, payload)
    return packed(dpkt_ethernet(checked, ip), udp)


def build_packet(dport: int, payload: BytesLike, **fields: Unpack[FieldArgs]) -> bytes:
    """One IPv4/IPv6 + UDP packet (no Ethernet header, for SOCK_RAW + IP_HDRINCL), built with dpkt."""
    return packed(*dpkt_datagram(header_fields(dport, ethernet=False, **fields), payload))
