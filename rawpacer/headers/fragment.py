"""RFC 791 fragmentation of one IPv4/UDP datagram, and the reassembly that undoes it.

The UDP header (with the checksum over the whole payload) goes in the first fragment; every
fragment but the last carries a multiple of 8 bytes and has MF set; all share one ip_id; DF is
clear; each fragment's IP datagram is at most ``mtu`` bytes.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable

from rawpacer.headers.addresses import (
    DEFAULT_IP,
    DEFAULT_MAC,
    DEFAULT_SPORT,
    DEFAULT_TTL,
    check_payload,
    header_fields,
)
from rawpacer.headers.build import dpkt_ethernet, dpkt_ip, dpkt_udp
from rawpacer.headers.checksum import BytesLike, checksum
from rawpacer.headers.fit import IPV4_HLEN, check_mtu
from rawpacer.headers.parse import ETH_TYPE_IPV4, IP_PROTO_UDP, Fragment, parse_fragment

_IP = struct.Struct("!BBHHHBBH4s4s")


def fragment_spans(ip_payload_len: int, mtu: int) -> list[tuple[int, int, bool]]:
    """``(start, end, more_fragments)`` byte ranges of the IP payload, one per fragment at this MTU."""
    if IPV4_HLEN + ip_payload_len <= check_mtu(mtu):
        return [(0, ip_payload_len, False)]
    step = (mtu - IPV4_HLEN) // 8 * 8
    starts = range(0, ip_payload_len, step)
    return [(s, min(s + step, ip_payload_len), s + step < ip_payload_len) for s in starts]


def build_fragments(
    dport: int,
    payload: BytesLike,
    mtu: int,
    *,
    sport: int = DEFAULT_SPORT,
    src_ip: str = DEFAULT_IP,
    dst_ip: str = DEFAULT_IP,
    src_mac: str = DEFAULT_MAC,
    dst_mac: str = DEFAULT_MAC,
    ttl: int = DEFAULT_TTL,
    ip_id: int = 0,
    ethernet: bool = True,
) -> list[bytes]:
    """The fragments (frames, or IP packets when ``ethernet=False``) of one UDP datagram, built with dpkt.

    A datagram that fits the MTU comes back as a one-item list (DF clear).
    """
    fields = header_fields(
        dport,
        sport=sport,
        src_ip=src_ip,
        dst_ip=dst_ip,
        src_mac=src_mac,
        dst_mac=dst_mac,
        ttl=ttl,
        ip_id=ip_id,
        df=False,
    )
    whole = bytes(dpkt_ip(fields, dpkt_udp(fields, check_payload(payload)), ip_id=fields.ip_id, df=False))
    datagram = whole[IPV4_HLEN:]
    out = []
    for start, end, more in fragment_spans(len(datagram), mtu):
        ip = dpkt_ip(fields, datagram[start:end], ip_id=fields.ip_id, df=False, mf=more, offset=start // 8)
        out.append(dpkt_ethernet(fields, ip) if ethernet else bytes(ip))
    return out


def _one_datagram(parts: list[Fragment]) -> bytes:
    first = parts[0]
    key = (first.src_ip, first.dst_ip, first.ip_id)
    data = b""
    for i, part in enumerate(parts):
        if (part.src_ip, part.dst_ip, part.ip_id) != key:
            raise ValueError(f"fragment {i} belongs to datagram {(part.src_ip, part.dst_ip, part.ip_id)}, not {key}")
        if part.frag_offset != len(data):
            raise ValueError(f"fragment at offset {part.frag_offset} does not follow the {len(data)} bytes before it")
        if part.mf != (i < len(parts) - 1):
            raise ValueError(f"fragment at offset {part.frag_offset} has mf={part.mf}, wrong for its position")
        data += part.data
    return data


def reassemble(frames: Iterable[BytesLike], *, ethernet: bool = True) -> bytes:
    """Rebuild one whole frame (or IP packet) from all fragments of one datagram, in any order.

    The result has DF, MF and offset clear and a fresh IPv4 checksum, so ``parse_frame`` reads it;
    ValueError if a fragment is missing, overlaps, or belongs to another datagram.
    """
    parts = sorted((parse_fragment(f, ethernet=ethernet) for f in frames), key=lambda p: p.frag_offset)
    if not parts:
        raise ValueError("no fragments to reassemble")
    data = _one_datagram(parts)
    total = IPV4_HLEN + len(data)
    if total > 0xFFFF:
        raise ValueError(f"reassembled datagram of {total} bytes exceeds 65535")
    return _header(parts[0], total, ethernet) + data


def _header(first: Fragment, total: int, ethernet: bool) -> bytes:
    ip = _IP.pack(
        0x45,
        0,
        total,
        first.ip_id,
        0,
        first.ttl,
        IP_PROTO_UDP,
        0,
        socket.inet_aton(first.src_ip),
        socket.inet_aton(first.dst_ip),
    )
    ip = ip[:10] + checksum(ip).to_bytes(2, "big") + ip[12:]
    if not ethernet:
        return ip
    macs = bytes.fromhex(f"{first.dst_mac}{first.src_mac}".replace(":", ""))
    return macs + ETH_TYPE_IPV4.to_bytes(2, "big") + ip
