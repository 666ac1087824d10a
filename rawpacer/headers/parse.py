"""Dissect Ethernet/IPv4/UDP frames (and IPv4/UDP packets) into plain fields, checking checksums.

Anything that is not one whole, unfragmented Ethernet II/IPv4/UDP frame raises ValueError and
nothing else, whatever the bytes. Fragments are refused by ``parse_frame``; ``parse_fragment``
reads one, and ``rawpacer.headers.fragment.reassemble`` rebuilds the whole frame from them.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import NamedTuple

from rawpacer.headers.checksum import BytesLike, ones_sum
from rawpacer.headers.fit import ETH_HLEN, IPV4_HLEN, UDP_HLEN

ETH_TYPE_IPV4 = 0x0800
IP_PROTO_UDP = 17
IP_DF = 0x4000
IP_MF = 0x2000
IP_OFFMASK = 0x1FFF

_ETH = struct.Struct("!6s6sH")
_IP = struct.Struct("!BxHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


@dataclass(frozen=True)
class ParsedFrame:
    """One whole UDP datagram's fields. MACs are None for ``parse_packet``; ``udp_checksum_ok`` is
    None when the sender sent no UDP checksum (0). ``mf``/``frag_offset`` are always False/0 here."""

    src_mac: str | None
    dst_mac: str | None
    src_ip: str
    dst_ip: str
    sport: int
    dport: int
    ttl: int
    ip_id: int
    df: bool
    mf: bool
    frag_offset: int
    ip_len: int
    udp_len: int
    ip_checksum_ok: bool
    udp_checksum_ok: bool | None
    payload: bytes


@dataclass(frozen=True)
class Fragment:
    """One IPv4 datagram or fragment carrying UDP, before reassembly: ``data`` is its IP payload
    and ``frag_offset`` is in bytes (the header field times 8)."""

    src_mac: str | None
    dst_mac: str | None
    src_ip: str
    dst_ip: str
    ttl: int
    ip_id: int
    df: bool
    mf: bool
    frag_offset: int
    ip_len: int
    ip_checksum_ok: bool
    data: bytes


class _Macs(NamedTuple):
    src: str | None
    dst: str | None


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def _ethernet(data: BytesLike) -> _Macs:
    if len(data) < ETH_HLEN:
        raise ValueError(f"Ethernet header truncated: {len(data)} bytes, need {ETH_HLEN}")
    dst, src, ethertype = _ETH.unpack_from(data)
    if ethertype != ETH_TYPE_IPV4:
        raise ValueError(f"ethertype 0x{ethertype:04x} is not IPv4 (0x0800)")
    return _Macs(_mac(src), _mac(dst))


def _fragment(data: BytesLike, start: int, macs: _Macs) -> Fragment:
    avail = len(data) - start
    if avail < IPV4_HLEN:
        raise ValueError(f"IPv4 header truncated: {avail} bytes, need {IPV4_HLEN}")
    vihl, ip_len, ip_id, flags_off, ttl, proto, _, src, dst = _IP.unpack_from(data, start)
    if vihl >> 4 != 4:
        raise ValueError(f"IP version {vihl >> 4} is not 4")
    ihl = (vihl & 0x0F) * 4
    if ihl < IPV4_HLEN:
        raise ValueError(f"IPv4 header length {ihl} is below {IPV4_HLEN}")
    if not ihl <= ip_len <= avail:
        raise ValueError(f"IPv4 total length {ip_len} does not fit header {ihl} and {avail} captured bytes")
    if proto != IP_PROTO_UDP:
        raise ValueError(f"IP protocol {proto} is not UDP (17)")
    raw = bytes(data[start : start + ip_len])
    return Fragment(
        src_mac=macs.src,
        dst_mac=macs.dst,
        src_ip=socket.inet_ntoa(src),
        dst_ip=socket.inet_ntoa(dst),
        ttl=ttl,
        ip_id=ip_id,
        df=bool(flags_off & IP_DF),
        mf=bool(flags_off & IP_MF),
        frag_offset=(flags_off & IP_OFFMASK) * 8,
        ip_len=ip_len,
        ip_checksum_ok=ones_sum(raw[:ihl]) == 0xFFFF,
        data=raw[ihl:],
    )


def _whole(frag: Fragment) -> ParsedFrame:
    if frag.mf or frag.frag_offset:
        raise ValueError(f"IPv4 fragment (mf={frag.mf}, offset={frag.frag_offset}): reassemble() it first")
    seg = frag.data
    if len(seg) < UDP_HLEN:
        raise ValueError(f"UDP header truncated: {len(seg)} bytes, need {UDP_HLEN}")
    sport, dport, udp_len, udp_sum = _UDP.unpack_from(seg)
    if not UDP_HLEN <= udp_len <= len(seg):
        raise ValueError(f"UDP length {udp_len} does not fit the {len(seg)}-byte IP payload")
    udp_ok = None
    if udp_sum:
        pseudo = socket.inet_aton(frag.src_ip) + socket.inet_aton(frag.dst_ip)
        pseudo_sum = ones_sum(pseudo, IP_PROTO_UDP + udp_len)
        udp_ok = ones_sum(seg[:udp_len], pseudo_sum) == 0xFFFF
    return ParsedFrame(
        src_mac=frag.src_mac,
        dst_mac=frag.dst_mac,
        src_ip=frag.src_ip,
        dst_ip=frag.dst_ip,
        sport=sport,
        dport=dport,
        ttl=frag.ttl,
        ip_id=frag.ip_id,
        df=frag.df,
        mf=False,
        frag_offset=0,
        ip_len=frag.ip_len,
        udp_len=udp_len,
        ip_checksum_ok=frag.ip_checksum_ok,
        udp_checksum_ok=udp_ok,
        payload=seg[UDP_HLEN:udp_len],
    )


def _bytes_like(data: object) -> BytesLike:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"data of type {type(data).__name__} is not bytes-like")  # noqa: TRY004 - parsers raise only ValueError
    return bytes(data) if isinstance(data, memoryview) else data


def parse_fragment(data: BytesLike, *, ethernet: bool = True) -> Fragment:
    """Dissect one Ethernet/IPv4 (or bare IPv4) datagram or fragment carrying UDP; ValueError otherwise."""
    data = _bytes_like(data)
    return _fragment(data, ETH_HLEN if ethernet else 0, _ethernet(data) if ethernet else _Macs(None, None))


def parse_frame(data: BytesLike) -> ParsedFrame:
    """Dissect one whole Ethernet II/IPv4/UDP frame; ValueError for anything else (fragments too).

    Bytes after the IPv4 total length (Ethernet padding) are ignored.
    """
    return _whole(parse_fragment(data, ethernet=True))


def parse_packet(data: BytesLike) -> ParsedFrame:
    """Dissect one whole IPv4/UDP packet (no Ethernet header); ValueError for anything else."""
    return _whole(parse_fragment(data, ethernet=False))
