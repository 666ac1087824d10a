"""IPv6 (RFC 8200): the 40-byte fixed header and the Fragment extension header.

Only the source fragments an IPv6 packet (routers never do, so there is no DF flag): it inserts a
Fragment header (next header 44) with a 32-bit identification, the offset in 8-byte units and the
M (more fragments) flag (RFC 8200, section 4.5). Every link carries at least 1280-byte packets
(section 5).
"""

from __future__ import annotations

from rawpacer.headers.layout import Field, Layout

ETH_TYPE_IPV6 = 0x86DD
"""The ethertype of an IPv6 packet."""

IP_PROTO_FRAGMENT = 44
"""The next-header number of the Fragment extension header."""

IPV6 = Layout(
    "IPv6 header",
    Field("version", 0, 4, 6, bits=4, shift=28),
    Field("traffic_class", 0, 4, bits=8, shift=20),
    Field("flow_label", 0, 4, bits=20),
    Field("payload_length", 4, 2),
    Field("next_header", 6, 1),
    Field("hop_limit", 7, 1, 64),
    Field("src", 8, 16),
    Field("dst", 24, 16),
)

IPV6_FRAGMENT = Layout(
    "IPv6 Fragment header",
    Field("next_header", 0, 1),
    Field("reserved", 1, 1),
    Field("offset", 2, 2, bits=13, shift=3),
    Field("res", 2, 2, bits=2, shift=1),
    Field("more", 2, 2, bits=1),
    Field("id", 4, 4),
)

IPV6_HLEN = IPV6.size
"""40: the fixed IPv6 header (payload length does not count it)."""

FRAGMENT_HLEN = IPV6_FRAGMENT.size
"""8: what the Fragment header adds to every fragment."""

DEFAULT_HOP_LIMIT = IPV6["hop_limit"].default
