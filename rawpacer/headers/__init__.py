"""Ethernet II [+ 802.1Q] / IPv4 or IPv6 / UDP header builders, parser, MTU fitting and fragmentation.

Each protocol is one module with one field table (``ethernet``, ``vlan``, ``ipv4``, ``ipv6``,
``udp``; the machinery in ``layout``). ``build_frame`` / ``build_packet`` build with dpkt
(reference, slow); ``FrameTemplate`` stamps the same bytes onto each new payload fast, from the
tables (C checksum when built: see ``IMPLEMENTATION`` and ``CHECKSUM_ENV``); ``parse_frame`` /
``parse_packet`` dissect; ``fit_payload`` / ``max_payload`` / ``trimmed_bytes`` do the MTU
arithmetic; ``build_fragments`` / ``FrameTemplate.fragments`` / ``reassemble`` fragment. The IP
version follows the addresses given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawpacer import lazy

if TYPE_CHECKING:
    from rawpacer.headers.addresses import MAX_UDP_PAYLOAD, FieldArgs, HeaderFields, header_fields
    from rawpacer.headers.build import build_frame, build_packet
    from rawpacer.headers.checksum import CHECKSUM_ENV, IMPLEMENTATION, ones_sum
    from rawpacer.headers.ethernet import ETH_HLEN
    from rawpacer.headers.fit import fit_payload, frame_size, max_payload, trimmed_bytes
    from rawpacer.headers.fragment import build_fragments, fragment_spans, reassemble
    from rawpacer.headers.ipv4 import IPV4_HLEN
    from rawpacer.headers.ipv6 import FRAGMENT_HLEN, IPV6_HLEN
    from rawpacer.headers.parse import Fragment, ParsedFrame, parse_fragment, parse_frame, parse_packet
    from rawpacer.headers.template import FrameTemplate
    from rawpacer.headers.udp import UDP_HLEN
    from rawpacer.headers.vlan import MAX_VLAN_ID, MIN_VLAN_ID, VLAN_HLEN
    from rawpacer.limits import MAX_MTU, MAX_UDP_PAYLOAD_V6, MIN_MTU, MIN_MTU_V6

_HOMES = {
    "MAX_UDP_PAYLOAD": "rawpacer.headers.addresses",
    "FieldArgs": "rawpacer.headers.addresses",
    "HeaderFields": "rawpacer.headers.addresses",
    "header_fields": "rawpacer.headers.addresses",
    "build_frame": "rawpacer.headers.build",
    "build_packet": "rawpacer.headers.build",
    "CHECKSUM_ENV": "rawpacer.headers.checksum",
    "IMPLEMENTATION": "rawpacer.headers.checksum",
    "ones_sum": "rawpacer.headers.checksum",
    "ETH_HLEN": "rawpacer.headers.ethernet",
    "fit_payload": "rawpacer.headers.fit",
    "frame_size": "rawpacer.headers.fit",
    "max_payload": "rawpacer.headers.fit",
    "trimmed_bytes": "rawpacer.headers.fit",
    "build_fragments": "rawpacer.headers.fragment",
    "fragment_spans": "rawpacer.headers.fragment",
    "reassemble": "rawpacer.headers.fragment",
    "IPV4_HLEN": "rawpacer.headers.ipv4",
    "FRAGMENT_HLEN": "rawpacer.headers.ipv6",
    "IPV6_HLEN": "rawpacer.headers.ipv6",
    "Fragment": "rawpacer.headers.parse",
    "ParsedFrame": "rawpacer.headers.parse",
    "parse_fragment": "rawpacer.headers.parse",
    "parse_frame": "rawpacer.headers.parse",
    "parse_packet": "rawpacer.headers.parse",
    "FrameTemplate": "rawpacer.headers.template",
    "UDP_HLEN": "rawpacer.headers.udp",
    "MAX_VLAN_ID": "rawpacer.headers.vlan",
    "MIN_VLAN_ID": "rawpacer.headers.vlan",
    "VLAN_HLEN": "rawpacer.headers.vlan",
    "MAX_MTU": "rawpacer.limits",
    "MAX_UDP_PAYLOAD_V6": "rawpacer.limits",
    "MIN_MTU": "rawpacer.limits",
    "MIN_MTU_V6": "rawpacer.limits",
}
"""Where each public name lives; imported on first use (``rawpacer.lazy``), so a module of this
package imports no more than it needs."""

__all__ = [
    "CHECKSUM_ENV",
    "ETH_HLEN",
    "FRAGMENT_HLEN",
    "IMPLEMENTATION",
    "IPV4_HLEN",
    "IPV6_HLEN",
    "MAX_MTU",
    "MAX_UDP_PAYLOAD",
    "MAX_UDP_PAYLOAD_V6",
    "MAX_VLAN_ID",
    "MIN_MTU",
    "MIN_MTU_V6",
    "MIN_VLAN_ID",
    "UDP_HLEN",
    "VLAN_HLEN",
    "FieldArgs",
    "Fragment",
    "FrameTemplate",
    "HeaderFields",
    "ParsedFrame",
    "build_fragments",
    "build_frame",
    "build_packet",
    "fit_payload",
    "fragment_spans",
    "frame_size",
    "header_fields",
    "max_payload",
    "ones_sum",
    "parse_fragment",
    "parse_frame",
    "parse_packet",
    "reassemble",
    "trimmed_bytes",
]


def __getattr__(name: str) -> object:
    """A public name or submodule, imported on its first use (PEP 562)."""
    return lazy.attribute(__name__, _HOMES, name)
