"""Ethernet II (DIX; IEEE 802.3 type interpretation): destination MAC, source MAC, ethertype.

The ethertype names what follows; the numbers live with the protocols they name
(``ipv4.ETH_TYPE_IPV4``, ``ipv6.ETH_TYPE_IPV6``, ``vlan.ETH_TYPE_8021Q``).
"""

from __future__ import annotations

from rawpacer.headers.layout import Field, Layout

ETHERNET = Layout(
    "Ethernet header",
    Field("dst", 0, 6),
    Field("src", 6, 6),
    Field("type", 12, 2),
)

ETH_HLEN = ETHERNET.size
"""14: the Ethernet II header; the MTU does not count it."""
