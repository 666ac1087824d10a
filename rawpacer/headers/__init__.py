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

if TYPE_CHECKING:  # ``A as A``: re-exported for mypy, which cannot read the computed __all__
    from rawpacer.headers.addresses import MAX_UDP_PAYLOAD as MAX_UDP_PAYLOAD
    from rawpacer.headers.addresses import FieldArgs as FieldArgs
    from rawpacer.headers.addresses import HeaderFields as HeaderFields
    from rawpacer.headers.addresses import header_fields as header_fields
    from rawpacer.headers.build import build_frame as build_frame
    from rawpacer.headers.build import build_packet as build_packet
    from rawpacer.headers.checksum import CHECKSUM_ENV as CHECKSUM_ENV
    from rawpacer.headers.checksum import IMPLEMENTATION as IMPLEMENTATION
    from rawpacer.headers.checksum import ones_sum as ones_sum
    from rawpacer.headers.ethernet import ETH_HLEN as ETH_HLEN
    from rawpacer.headers.fit import fit_payload as fit_payload
    from rawpacer.headers.fit import frame_size as frame_size
    from rawpacer.headers.fit import max_payload as max_payload
    from rawpacer.headers.fit import trimmed_bytes as trimmed_bytes
    from rawpacer.headers.fragment import build_fragments as build_fragments
    from rawpacer.headers.fragment import fragment_spans as fragment_spans
    from rawpacer.headers.fragment import reassemble as reassemble
    from rawpacer.headers.ipv4 import IPV4_HLEN as IPV4_HLEN
    from rawpacer.headers.ipv6 import FRAGMENT_HLEN as FRAGMENT_HLEN
    from rawpacer.headers.ipv6 import IPV6_HLEN as IPV6_HLEN
    from rawpacer.headers.parse import Fragment as Fragment
    from rawpacer.headers.parse import ParsedFrame as ParsedFrame
    from rawpacer.headers.parse import parse_fragment as parse_fragment
    from rawpacer.headers.parse import parse_frame as parse_frame
    from rawpacer.headers.parse import parse_packet as parse_packet
    from rawpacer.headers.template import FrameTemplate as FrameTemplate
    from rawpacer.headers.udp import UDP_HLEN as UDP_HLEN
    from rawpacer.headers.vlan import MAX_VLAN_ID as MAX_VLAN_ID
    from rawpacer.headers.vlan import MIN_VLAN_ID as MIN_VLAN_ID
    from rawpacer.headers.vlan import VLAN_HLEN as VLAN_HLEN
    from rawpacer.limits import MAX_MTU as MAX_MTU
    from rawpacer.limits import MAX_UDP_PAYLOAD_V6 as MAX_UDP_PAYLOAD_V6
    from rawpacer.limits import MIN_MTU as MIN_MTU
    from rawpacer.limits import MIN_MTU_V6 as MIN_MTU_V6

_HOMES = lazy.homes(
    {
        "rawpacer.headers.addresses": ("MAX_UDP_PAYLOAD", "FieldArgs", "HeaderFields", "header_fields"),
        "rawpacer.headers.build": ("build_frame", "build_packet"),
        "rawpacer.headers.checksum": ("CHECKSUM_ENV", "IMPLEMENTATION", "ones_sum"),
        "rawpacer.headers.ethernet": ("ETH_HLEN",),
        "rawpacer.headers.fit": ("fit_payload", "frame_size", "max_payload", "trimmed_bytes"),
        "rawpacer.headers.fragment": ("build_fragments", "fragment_spans", "reassemble"),
        "rawpacer.headers.ipv4": ("IPV4_HLEN",),
        "rawpacer.headers.ipv6": ("FRAGMENT_HLEN", "IPV6_HLEN"),
        "rawpacer.headers.parse": ("Fragment", "ParsedFrame", "parse_fragment", "parse_frame", "parse_packet"),
        "rawpacer.headers.template": ("FrameTemplate",),
        "rawpacer.headers.udp": ("UDP_HLEN",),
        "rawpacer.headers.vlan": ("MAX_VLAN_ID", "MIN_VLAN_ID", "VLAN_HLEN"),
        "rawpacer.limits": ("MAX_MTU", "MAX_UDP_PAYLOAD_V6", "MIN_MTU", "MIN_MTU_V6"),
    }
)
"""Where each public name lives; imported on first use (``rawpacer.lazy``), so a module of this
package imports no more than it needs."""

__all__ = list(_HOMES)


def __getattr__(name: str) -> object:
    """A public name or submodule, imported on its first use (PEP 562)."""
    return lazy.attribute(__name__, _HOMES, name)
