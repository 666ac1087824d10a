"""MTU arithmetic: how much UDP payload one IPv4 datagram carries on a link, and what gets cut.

An Ethernet frame is 14 (Ethernet) + 20 (IPv4) + 8 (UDP) + payload bytes; the MTU counts the IPv4
datagram only, so a payload fits when ``payload + 28 <= mtu`` and, whatever the MTU, when it is
at most 65507 (the IPv4 total-length field is 16 bits).
"""

from __future__ import annotations

from typing import TypeVar

from rawpacer.headers.addresses import check_int, check_payload
from rawpacer.limits import MAX_MTU, MAX_UDP_PAYLOAD, MIN_MTU

ETH_HLEN = 14
IPV4_HLEN = 20
UDP_HLEN = 8

P = TypeVar("P", bytes, bytearray, memoryview)


def check_mtu(mtu: object) -> int:
    """``mtu`` as an int in MIN_MTU..MAX_MTU (68..65536); UsageError naming it otherwise."""
    return check_int("mtu", mtu, MIN_MTU, MAX_MTU)


def max_payload(mtu: int) -> int:
    """The largest UDP payload one unfragmented IPv4 datagram carries on a link of this MTU."""
    return min(check_mtu(mtu) - IPV4_HLEN - UDP_HLEN, MAX_UDP_PAYLOAD)


def fit_payload(payload: P, mtu: int) -> P:
    """The longest prefix of ``payload`` that fits one datagram at this MTU (same type as given)."""
    payload = check_payload(payload, limit=None)
    limit = max_payload(mtu)
    return payload if len(payload) <= limit else payload[:limit]


def trimmed_bytes(size: int, mtu: int) -> int:
    """How many bytes ``fit_payload`` cuts from a payload of ``size`` bytes at this MTU."""
    check_int("size", size, 0, 1 << 62)
    return max(0, size - max_payload(mtu))


def frame_size(payload_len: int, *, ethernet: bool = True) -> int:
    """Bytes on the wire for one unfragmented datagram: headers plus payload."""
    return (ETH_HLEN if ethernet else 0) + IPV4_HLEN + UDP_HLEN + payload_len
