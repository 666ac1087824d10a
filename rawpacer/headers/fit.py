"""MTU arithmetic: how much UDP payload one IPv4 or IPv6 datagram carries on a link, and what gets cut.

The MTU counts the IP datagram only (not the Ethernet header or a VLAN tag), so a payload fits
when ``payload + IP header + 8 <= mtu``: 1472 bytes at MTU 1500 over IPv4 (20-byte header), 1452
over IPv6 (40). Whatever the MTU, IPv4 carries at most 65507 bytes (its total length is 16 bits)
and IPv6 65527 (its payload length is). IPv6 links have an MTU of at least 1280 (RFC 8200,
section 5), so a smaller one is refused for IPv6.
"""

from __future__ import annotations

from typing import TypeVar, cast

from rawpacer.headers.addresses import check_int, check_payload
from rawpacer.headers.ethernet import ETH_HLEN
from rawpacer.headers.family import V6, family
from rawpacer.headers.ipv4 import IPV4_HLEN
from rawpacer.headers.ipv6 import IPV6_HLEN
from rawpacer.headers.udp import UDP_HLEN
from rawpacer.headers.vlan import VLAN_HLEN
from rawpacer.limits import MAX_MTU, MAX_UDP_PAYLOAD, MIN_MTU

__all__ = ["ETH_HLEN", "IPV4_HLEN", "IPV6_HLEN", "MAX_MTU", "MAX_UDP_PAYLOAD", "MIN_MTU", "UDP_HLEN"]  # re-exported

P = TypeVar("P", bytes, bytearray, memoryview)


def check_mtu(mtu: object, ip_version: int = 4) -> int:
    """``mtu`` as an int in the version's range (IPv4 68-65536, IPv6 1280-65536); UsageError naming it otherwise."""
    fam = family(ip_version)
    return check_int("mtu", mtu, fam.min_mtu, MAX_MTU, " for IPv6, whose minimum link MTU is 1280" if fam is V6 else "")


def max_payload(mtu: int, ip_version: int = 4) -> int:
    """The largest UDP payload one unfragmented datagram of this IP version carries on a link of this MTU."""
    fam = family(ip_version)
    return min(check_mtu(mtu, ip_version) - fam.header_len - UDP_HLEN, fam.max_udp_payload)


def fit_payload(payload: P, mtu: int, ip_version: int = 4) -> P:
    """The longest prefix of ``payload`` that fits one datagram at this MTU (same type as given)."""
    payload = cast(P, check_payload(payload, limit=None))  # the same object, or a memoryview cast to bytes
    limit = max_payload(mtu, ip_version)
    return payload if len(payload) <= limit else payload[:limit]


def trimmed_bytes(size: int, mtu: int, ip_version: int = 4) -> int:
    """How many bytes ``fit_payload`` cuts from a payload of ``size`` bytes at this MTU."""
    check_int("size", size, 0, 1 << 62)
    return max(0, size - max_payload(mtu, ip_version))


def frame_size(payload_len: int, *, ethernet: bool = True, ip_version: int = 4, vlan: int | None = None) -> int:
    """Bytes on the wire for one unfragmented datagram: headers (a VLAN tag when ``vlan`` is an id) plus payload."""
    link = (ETH_HLEN + (0 if vlan is None else VLAN_HLEN)) if ethernet else 0
    return link + family(ip_version).header_len + UDP_HLEN + payload_len
