"""UDP (RFC 768): ports, length and checksum, and the pseudo-header its checksum starts from.

The checksum covers a pseudo-header, the UDP header and the payload. A computed 0 is sent as
0xFFFF, since 0 in the field means "no checksum": allowed over IPv4 (RFC 768), invalid over IPv6,
where the checksum is mandatory and a receiver drops a datagram whose checksum is 0 (RFC 8200,
section 8.1).
"""

from __future__ import annotations

from rawpacer.headers.checksum import ones_sum
from rawpacer.headers.layout import Field, Layout
from rawpacer.limits import DEFAULT_SPORT

IP_PROTO_UDP = 17
"""The IPv4 protocol / IPv6 next-header number of UDP."""

UDP = Layout(
    "UDP header",
    Field("sport", 0, 2, DEFAULT_SPORT),
    Field("dport", 2, 2),
    Field("length", 4, 2),
    Field("checksum", 6, 2),
)

UDP_HLEN = UDP.size
"""8: the UDP header."""

UDP_CHECKSUM_OFFSET = UDP.offset("checksum")
"""6: where the checksum sits in the UDP header (its last two bytes)."""


def pseudo_header_sum(src: bytes, dst: bytes, udp_len: int) -> int:
    """The ones'-complement sum of the UDP checksum's pseudo-header, for either IP version.

    IPv4's (RFC 768) is source, destination, a zero byte, protocol 17 and the 16-bit UDP length;
    IPv6's (RFC 8200, section 8.1) is source, destination, the 32-bit length, three zero bytes and
    next header 17. Zeros add nothing, so both sum to addresses + 17 + length.
    """
    return ones_sum(src + dst, IP_PROTO_UDP + udp_len)
