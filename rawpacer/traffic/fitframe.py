"""A prebuilt frame over the link MTU, fitted the way the fan-out fits its messages (``--fit``).

``trim`` cuts the IP packet to the MTU: a UDP datagram keeps a shorter payload, its UDP length and
checksum fixed (the checksum recomputed over what is left; 0, "none" in IPv4 per RFC 768, stays 0);
any other packet is cut and only its IP length fixed. ``fragment`` splits the IP packet as its
source would (IPv4: RFC 791, DF cleared, every fragment a copy of the header with its options;
IPv6: RFC 8200 section 4.5, a Fragment header after the fixed header, everything behind it the
fragmentable part). ``strict`` refuses it. A frame that is not IPv4 or IPv6 over Ethernet (at most
one 802.1Q tag) is cut under trim and fragment alike. Pure: no socket, no root.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rawpacer.errors import UsageError
from rawpacer.headers.checksum import checksum, ones_sum
from rawpacer.headers.ethernet import ETH_HLEN
from rawpacer.headers.ipv4 import ETH_TYPE_IPV4, IP_DF, IP_MF, IP_OFFMASK, IPV4_HLEN
from rawpacer.headers.ipv6 import ETH_TYPE_IPV6, FRAGMENT_HLEN, IP_PROTO_FRAGMENT, IPV6_HLEN
from rawpacer.headers.udp import IP_PROTO_UDP, UDP_HLEN
from rawpacer.headers.vlan import ETH_TYPE_8021Q, VLAN_HLEN

FITS = ("trim", "fragment", "strict")
_U16 = struct.Struct("!H")


@dataclass(frozen=True)
class Fitted:
    """What leaves for one frame: the frames (one, or its fragments) and the UDP payload bytes trim cut."""

    frames: list[bytes]
    cut: int = 0

    @property
    def changed(self) -> bool:
        """True when the frame did not fit as it was."""
        return self.cut > 0 or len(self.frames) > 1


def link_length(frame: bytes) -> tuple[int, int]:
    """Where the IP header starts (after Ethernet and at most one 802.1Q tag) and the ethertype."""
    if len(frame) < ETH_HLEN:
        return len(frame), 0
    start, ethertype = ETH_HLEN, _U16.unpack_from(frame, ETH_HLEN - 2)[0]
    if ethertype == ETH_TYPE_8021Q and len(frame) >= ETH_HLEN + VLAN_HLEN:
        start, ethertype = ETH_HLEN + VLAN_HLEN, _U16.unpack_from(frame, ETH_HLEN + VLAN_HLEN - 2)[0]
    return start, ethertype


def fit_frame(frame: bytes, mtu: int, fit: str, ip_id: int, where: str = "a frame") -> Fitted:
    """``frame`` as it leaves on a link of ``mtu`` under ``fit``; ``ip_id`` identifies the datagram's
    fragments; ``where`` names the frame in strict's one-line refusal."""
    if len(frame) - ETH_HLEN <= mtu:  # the common case, decided without parsing
        return Fitted([frame])
    start, ethertype = link_length(frame)
    size = len(frame) - start
    if size <= mtu:
        return Fitted([frame])
    if fit == "strict":
        raise UsageError(
            f"{where} carries a {size}-byte packet, over the link MTU {mtu} (fit strict; use --fit trim or fragment)"
        )
    if ethertype == ETH_TYPE_IPV4 and size >= IPV4_HLEN:
        return _trim_v4(frame, start, mtu) if fit == "trim" else _fragment_v4(frame, start, mtu)
    if ethertype == ETH_TYPE_IPV6 and size >= IPV6_HLEN:
        return _trim_v6(frame, start, mtu) if fit == "trim" else _fragment_v6(frame, start, mtu, ip_id)
    return Fitted([frame[: start + mtu]])


def _udp_checksum(pseudo: bytes, udp: bytearray) -> int:
    """The UDP checksum over a pseudo-header and the datagram (its checksum field zero); 0 becomes 0xFFFF."""
    udp[6:8] = b"\0\0"
    return checksum(udp, ones_sum(pseudo)) or 0xFFFF


def _trim_v4(frame: bytes, start: int, mtu: int) -> Fitted:
    ihl = (frame[start] & 0x0F) * 4
    out = bytearray(frame[: start + mtu])
    flags = _U16.unpack_from(frame, start + 6)[0]
    cut = 0
    if frame[start + 9] == IP_PROTO_UDP and not flags & (IP_MF | IP_OFFMASK) and mtu >= ihl + UDP_HLEN:
        udp = start + ihl
        cut = len(frame) - len(out)
        _U16.pack_into(out, udp + 4, mtu - ihl)
        if _U16.unpack_from(frame, udp + 6)[0]:
            pseudo = bytes(out[start + 12 : start + 20]) + bytes([0, IP_PROTO_UDP]) + _U16.pack(mtu - ihl)
            body = bytearray(out[udp:])
            _U16.pack_into(out, udp + 6, _udp_checksum(pseudo, body))
    _U16.pack_into(out, start + 2, mtu)
    _ipv4_checksum(out, start, ihl)
    return Fitted([bytes(out)], cut)


def _ipv4_checksum(out: bytearray, start: int, ihl: int) -> None:
    out[start + 10 : start + 12] = b"\0\0"
    _U16.pack_into(out, start + 10, checksum(out[start : start + ihl]))


def _fragment_v4(frame: bytes, start: int, mtu: int) -> Fitted:
    ihl = (frame[start] & 0x0F) * 4
    end = min(len(frame), start + _U16.unpack_from(frame, start + 2)[0])
    flags = _U16.unpack_from(frame, start + 6)[0]
    head, data = frame[: start + ihl], frame[start + ihl : end]
    step = (mtu - ihl) // 8 * 8
    frames = []
    for at in range(0, len(data), step):
        piece = data[at : at + step]
        more = at + step < len(data) or bool(flags & IP_MF)
        out = bytearray(head) + piece
        _U16.pack_into(out, start + 2, ihl + len(piece))
        offset = (flags & IP_OFFMASK) + at // 8
        _U16.pack_into(out, start + 6, (flags & ~(IP_DF | IP_MF | IP_OFFMASK)) | (IP_MF if more else 0) | offset)
        _ipv4_checksum(out, start, ihl)
        frames.append(bytes(out))
    return Fitted(frames)


def _trim_v6(frame: bytes, start: int, mtu: int) -> Fitted:
    out = bytearray(frame[: start + mtu])
    _U16.pack_into(out, start + 4, mtu - IPV6_HLEN)
    cut = 0
    if frame[start + 6] == IP_PROTO_UDP and mtu >= IPV6_HLEN + UDP_HLEN:
        udp, length = start + IPV6_HLEN, mtu - IPV6_HLEN
        cut = len(frame) - len(out)
        _U16.pack_into(out, udp + 4, length)
        pseudo = bytes(out[start + 8 : start + 40]) + struct.pack("!I3xB", length, IP_PROTO_UDP)
        body = bytearray(out[udp:])
        _U16.pack_into(out, udp + 6, _udp_checksum(pseudo, body))
    return Fitted([bytes(out)], cut)


def _fragment_v6(frame: bytes, start: int, mtu: int, ip_id: int) -> Fitted:
    end = min(len(frame), start + IPV6_HLEN + _U16.unpack_from(frame, start + 4)[0])
    base, data = bytearray(frame[: start + IPV6_HLEN]), frame[start + IPV6_HLEN : end]
    following = base[start + 6]
    base[start + 6] = IP_PROTO_FRAGMENT
    step = (mtu - IPV6_HLEN - FRAGMENT_HLEN) // 8 * 8
    frames = []
    for at in range(0, len(data), step):
        piece = data[at : at + step]
        more = at + step < len(data)
        out = bytearray(base)
        _U16.pack_into(out, start + 4, FRAGMENT_HLEN + len(piece))
        out += struct.pack("!BxHI", following, at | int(more), ip_id & 0xFFFFFFFF) + piece
        frames.append(bytes(out))
    return Fitted(frames)
