"""What differs between IPv4 and IPv6 for the operations, one row per version.

The builders, fitting and fragmenting read these rows rather than asking "which version?" at
every step; the header tables themselves are in ``ipv4.py`` and ``ipv6.py``.
"""

from __future__ import annotations

from typing import NamedTuple

from rawpacer.errors import UsageError
from rawpacer.headers.ipv4 import ETH_TYPE_IPV4, IPV4, IPV4_HLEN
from rawpacer.headers.ipv6 import ETH_TYPE_IPV6, FRAGMENT_HLEN, IPV6_FRAGMENT, IPV6_HLEN
from rawpacer.limits import MAX_UDP_PAYLOAD, MAX_UDP_PAYLOAD_V6, MIN_MTU, MIN_MTU_V6


class Family(NamedTuple):
    """One IP version's numbers."""

    version: int
    name: str
    header_len: int
    """The IP header rawpacer sends (IPv4 without options, the fixed IPv6 header)."""
    ethertype: int
    address_len: int
    min_mtu: int
    max_udp_payload: int
    fragment_header_len: int
    """Bytes every fragment adds beyond the IP header: 0 for IPv4 (the fields are in its header),
    8 for IPv6's Fragment header."""
    max_ip_id: int
    """The largest fragment identification: 16 bits in IPv4's header, 32 in IPv6's Fragment header."""


V4 = Family(4, "IPv4", IPV4_HLEN, ETH_TYPE_IPV4, 4, MIN_MTU, MAX_UDP_PAYLOAD, 0, IPV4["id"].max)
V6 = Family(
    6, "IPv6", IPV6_HLEN, ETH_TYPE_IPV6, 16, MIN_MTU_V6, MAX_UDP_PAYLOAD_V6, FRAGMENT_HLEN, IPV6_FRAGMENT["id"].max
)

_BY_VERSION = {4: V4, 6: V6}


def family(ip_version: object) -> Family:
    """The row for ``ip_version`` (4 or 6); UsageError naming it otherwise."""
    row = _BY_VERSION.get(ip_version) if type(ip_version) is int else None
    if row is None:
        raise UsageError(f"ip_version {ip_version!r} is not 4 or 6")
    return row


def family_of(address: bytes) -> Family:
    """The row for a packed address (4 or 16 bytes)."""
    return V4 if len(address) == V4.address_len else V6
