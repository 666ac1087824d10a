"""Build Ethernet II + IPv4 + UDP frames (or bare IPv4 + UDP packets) with dpkt, checksums included.

These are the reference builders: slow (dpkt builds objects each call) but obviously right.
``FrameTemplate`` produces the same bytes much faster for repeated sends to one destination.
"""

from __future__ import annotations

import dpkt

from rawpacer.headers.addresses import (
    DEFAULT_IP,
    DEFAULT_MAC,
    DEFAULT_SPORT,
    DEFAULT_TTL,
    HeaderFields,
    check_payload,
    header_fields,
)
from rawpacer.headers.checksum import BytesLike


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


def dpkt_udp(fields: HeaderFields, payload: BytesLike) -> dpkt.udp.UDP:
    """A dpkt UDP header carrying ``payload``; its checksum is filled in when the IP header is packed."""
    return dpkt.udp.UDP(sport=fields.sport, dport=fields.dport, ulen=8 + len(payload), data=bytes(payload))


def dpkt_ethernet(fields: HeaderFields, ip: dpkt.ip.IP) -> bytes:
    """``ip`` wrapped in an Ethernet II header (type IPv4), packed."""
    return bytes(
        dpkt.ethernet.Ethernet(src=fields.src_mac, dst=fields.dst_mac, type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
    )


def _packed_ip(fields: HeaderFields, payload: object) -> dpkt.ip.IP:
    return dpkt_ip(fields, dpkt_udp(fields, check_payload(payload)), ip_id=fields.ip_id, df=fields.df)


def build_frame(
    dport: int,
    payload: BytesLike,
    *,
    sport: int = DEFAULT_SPORT,
    src_ip: str = DEFAULT_IP,
    dst_ip: str = DEFAULT_IP,
    src_mac: str = DEFAULT_MAC,
    dst_mac: str = DEFAULT_MAC,
    ttl: int = DEFAULT_TTL,
    ip_id: int = 0,
    df: bool = True,
) -> bytes:
    """One Ethernet II + IPv4 + UDP frame carrying ``payload`` to ``dport``, built with dpkt."""
    fields = header_fields(
        dport, sport=sport, src_ip=src_ip, dst_ip=dst_ip, src_mac=src_mac, dst_mac=dst_mac, ttl=ttl, ip_id=ip_id, df=df
    )
    return dpkt_ethernet(fields, _packed_ip(fields, payload))


def build_packet(
    dport: int,
    payload: BytesLike,
    *,
    sport: int = DEFAULT_SPORT,
    src_ip: str = DEFAULT_IP,
    dst_ip: str = DEFAULT_IP,
    ttl: int = DEFAULT_TTL,
    ip_id: int = 0,
    df: bool = True,
) -> bytes:
    """One IPv4 + UDP packet (no Ethernet header, for SOCK_RAW + IP_HDRINCL), built with dpkt."""
    fields = header_fields(
        dport,
        sport=sport,
        src_ip=src_ip,
        dst_ip=dst_ip,
        src_mac=DEFAULT_MAC,
        dst_mac=DEFAULT_MAC,
        ttl=ttl,
        ip_id=ip_id,
        df=df,
    )
    return bytes(_packed_ip(fields, payload))
