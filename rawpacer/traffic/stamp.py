"""Where ``--vary``'s fields sit in a template's frames, and the fields the transmit engine stamps per frame.

The fields that do not choose the reader (``STAMPED``: sport, src-ip, flow-label, the VLAN id) are
not written into a shaped stream's frame pool: the engine writes frame k's value as the frame leaves
(``_engine.c``, into the ring slot or UMEM chunk it copied the frame to, or into the pool itself for
sendmmsg), its checksums fixed incrementally (RFC 1624 eqn. 3). ``compile_stamps`` turns Variations
into the engine's spec, one ``FieldStamp`` a field; ``FramePool.leaving`` is its numpy twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from rawpacer.errors import require
from rawpacer.headers import ETH_HLEN, UDP_HLEN, FrameTemplate
from rawpacer.traffic.vary import Variation

STAMPED = ("sport", "src-ip", "flow-label", "vlan")
"""The fields the engine stamps per frame: none decides which reader gets it (dport and dst-ip stay in the pool)."""


class Layout:
    """Where the fields ``--vary`` sets sit in a template's frames (``vlan``: the tag's TCI, or -1 untagged)."""

    def __init__(self, template: FrameTemplate) -> None:
        self.ip = template.link_len
        self.version = template.ip_version
        self.udp = template.header_len - UDP_HLEN
        v4 = self.version == 4
        self.src = self.ip + (12 if v4 else 8)
        self.addr_len = 4 if v4 else 16
        self.dst = self.src + self.addr_len
        self.ip_checksum = self.ip + 10 if v4 else None
        self.udp_checksum = self.udp + 6
        self.vlan = ETH_HLEN if template.link_len > ETH_HLEN else -1


class FieldStamp(NamedTuple):
    """One field the engine stamps, as ``Engine.send(..., stamps)`` takes it: ``width`` bytes at ``at``
    (2, 4, or 16 for an IPv6 address), of which ``mask`` are the field's bits (2 and 4 bytes); frame k
    carries ``low + offset(k)``, the offset ``k mod (last + 1)`` or, ``random``, SplitMix64's output
    k + 1 from ``key`` times ``last + 1``, high 64 bits (``Variation.offsets``); ``low_high`` is an
    IPv6 address's high 64 bits (the low half's carry goes into it). The IPv4 header checksum at
    ``ip_sum`` and the UDP checksum at ``udp_sum`` are fixed (-1: none)."""

    at: int
    width: int
    mask: int
    random: bool
    low_high: int
    low: int
    last: int
    key: int
    ip_sum: int
    udp_sum: int


def field_stamp(lay: Layout, variation: Variation) -> FieldStamp:
    """``variation`` (one of ``STAMPED``) as the engine stamps it into frames of ``lay``."""
    name = variation.field
    require(name != "vlan" or lay.vlan >= 0, "--vary vlan needs tagged frames: give --vlan ID too")
    require(name != "flow-label" or lay.version == 6, "--vary flow-label needs IPv6 (-6)")
    at, width, mask, ip_sum, udp_sum = lay.udp, 2, 0xFFFF, -1, lay.udp_checksum
    if name == "vlan":  # the tag's VID, its priority bits kept (IEEE 802.1Q); in no checksum
        at, mask, udp_sum = lay.vlan, 0x0FFF, -1
    elif name == "flow-label":  # version, traffic class, flow label (RFC 8200); in no checksum (RFC 8200 8.1)
        at, width, mask, udp_sum = lay.ip, 4, 0x000FFFFF, -1
    elif name == "src-ip":  # in the UDP pseudo-header (RFC 768, RFC 8200 8.1) and IPv4's own header (RFC 791)
        at, width = lay.src, lay.addr_len
        mask = 0xFFFFFFFF if width == 4 else 0
        ip_sum = -1 if lay.ip_checksum is None else lay.ip_checksum
    low = variation.low
    return FieldStamp(
        at,
        width,
        mask,
        variation.mode == "random",
        low >> 64,
        low & (2**64 - 1),
        variation.span - 1,
        variation.key,
        ip_sum,
        udp_sum,
    )


def compile_stamps(lay: Layout, varies: Mapping[str, Variation]) -> tuple[FieldStamp, ...]:
    """The engine's stamps for the ``STAMPED`` fields of ``varies`` (the others are left to the pool)."""
    return tuple(field_stamp(lay, v) for name, v in varies.items() if name in STAMPED)
