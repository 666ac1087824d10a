"""Ethernet II / IPv4 / UDP header builders, parser, MTU fitting and fragmentation.

``build_frame`` / ``build_packet`` build with dpkt (reference, slow); ``FrameTemplate`` stamps
the same bytes onto each new payload fast (C checksum when built: see ``checksum.IMPLEMENTATION``);
``parse_frame`` / ``parse_packet`` dissect; ``fit_payload`` / ``max_payload`` / ``trimmed_bytes``
do the MTU arithmetic; ``build_fragments`` / ``FrameTemplate.fragments`` / ``reassemble`` fragment.
"""

from rawpacer.headers.addresses import MAX_UDP_PAYLOAD, HeaderFields, header_fields
from rawpacer.headers.build import build_frame, build_packet
from rawpacer.headers.checksum import IMPLEMENTATION, ones_sum
from rawpacer.headers.fit import (
    ETH_HLEN,
    IPV4_HLEN,
    MAX_MTU,
    MIN_MTU,
    UDP_HLEN,
    fit_payload,
    frame_size,
    max_payload,
    trimmed_bytes,
)
from rawpacer.headers.fragment import build_fragments, fragment_spans, reassemble
from rawpacer.headers.parse import Fragment, ParsedFrame, parse_fragment, parse_frame, parse_packet
from rawpacer.headers.template import FrameTemplate

__all__ = [
    "ETH_HLEN",
    "IMPLEMENTATION",
    "IPV4_HLEN",
    "MAX_MTU",
    "MAX_UDP_PAYLOAD",
    "MIN_MTU",
    "UDP_HLEN",
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
