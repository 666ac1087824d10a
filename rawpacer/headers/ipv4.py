"""IPv4 (RFC 791): the 20-byte header rawpacer sends (no options), and its flag bits.

The flags word is the reserved bit, DF, MF and the 13-bit fragment offset (in 8-byte units);
their masks below are derived from the table. The checksum covers the header only (RFC 791,
RFC 1071).
"""

from __future__ import annotations

from rawpacer.headers.layout import Field, Layout

ETH_TYPE_IPV4 = 0x0800
"""The ethertype of an IPv4 datagram."""

IPV4 = Layout(
    "IPv4 header",
    Field("version", 0, 1, 4, bits=4, shift=4),
    Field("ihl", 0, 1, 5, bits=4),
    Field("tos", 1, 1),
    Field("total_length", 2, 2),
    Field("id", 4, 2),
    Field("reserved", 6, 2, bits=1, shift=15),
    Field("df", 6, 2, bits=1, shift=14),
    Field("mf", 6, 2, bits=1, shift=13),
    Field("frag_offset", 6, 2, bits=13),
    Field("ttl", 8, 1, 64),
    Field("protocol", 9, 1),
    Field("checksum", 10, 2),
    Field("src", 12, 4),
    Field("dst", 16, 4),
)

IPV4_HLEN = IPV4.size
"""20: the IPv4 header without options."""

IP_DF = IPV4["df"].mask
IP_MF = IPV4["mf"].mask
IP_OFFMASK = IPV4["frag_offset"].mask

DEFAULT_TTL = IPV4["ttl"].default
