"""The IEEE 802.1Q VLAN tag: the Ethernet type field says 0x8100 (the TPID), then these 4 bytes,
then the ethertype of what the frame carries.

The tag control information is the priority code point (3 bits), the drop eligible indicator
(1 bit) and the VLAN identifier (12 bits). VID 0 is the *priority tag* (the frame belongs to no
VLAN, it only carries a priority) and VID 0xFFF is reserved (IEEE 802.1Q, table 9-2). A tag does
not count in the MTU: the MTU bounds the IP datagram, and Linux lets a tagged frame be 4 bytes
longer than an untagged one.
"""

from __future__ import annotations

from rawpacer.headers.layout import Field, Layout

ETH_TYPE_8021Q = 0x8100
"""The ethertype (TPID) that says an 802.1Q tag follows."""

VLAN = Layout(
    "802.1Q tag",
    Field("priority", 0, 2, bits=3, shift=13),
    Field("dei", 0, 2, bits=1, shift=12),
    Field("vid", 0, 2, bits=12),
    Field("type", 2, 2),
)

VLAN_HLEN = VLAN.size
"""4: what a tag adds to the Ethernet header."""

MIN_VLAN_ID = 1
"""The smallest id that names a VLAN: 0 means "priority tag, no VLAN" (IEEE 802.1Q, 9.6)."""
MAX_VLAN_ID = VLAN["vid"].max - 1
"""4094: the largest VLAN id (0xFFF is reserved)."""
