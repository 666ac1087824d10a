"""FrameTemplate: the headers for one destination written once from the tables, stamped onto each payload.

For a payload length the header bytes are fixed except the UDP checksum: the lengths (and IPv4's
header checksum) depend on the length only, so they are computed once per length and kept. The UDP
checksum is the precomputed sum of the pseudo-header and the UDP header for that length plus the
payload's sum, the one pass over the data (the C extension when built). The bytes equal
``build_frame``'s (``build_packet``'s when ``ethernet=False``) for every input.
"""

from __future__ import annotations

import mmap
import struct
from typing import TYPE_CHECKING

from rawpacer.errors import UsageError
from rawpacer.headers.addresses import check_int, check_payload, header_fields
from rawpacer.headers.checksum import BytesLike, ones_sum
from rawpacer.headers.compose import FrameHeaders
from rawpacer.headers.fragment import fragment_spans
from rawpacer.headers.udp import UDP_CHECKSUM_OFFSET, UDP_HLEN, pseudo_header_sum

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack for **kwargs needs Python 3.12

    from rawpacer.headers.addresses import FieldArgs

_KEPT_LENGTHS = 64
"""Payload lengths whose headers a template keeps (a fan-out sends one length over and over)."""


class FrameTemplate:
    """Frames (or IP packets, ``ethernet=False``) to one destination, re-stamped per payload.

    Takes ``build_frame``'s keyword fields. What a writer lays frames out with: ``ip_version``,
    ``header_len`` (bytes before the payload), ``link_len`` (where the IP header starts),
    ``udp_checksum_offset``, ``max_udp_payload``, and per payload length ``frame_len(n)``,
    ``headers(n)`` and ``udp_sum_base(n)``.
    """

    def __init__(self, dport: int, *, ethernet: bool = True, **fields: Unpack[FieldArgs]) -> None:
        self.ethernet = bool(ethernet)
        self.fields = header_fields(dport, ethernet=self.ethernet, **fields)
        self._headers = FrameHeaders(self.fields, self.ethernet)
        family = self._headers.family
        self.ip_version: int = family.version
        """4 or 6, from the addresses."""
        self.link_len = len(self._headers.link)
        """Bytes of Ethernet header and VLAN tag (0, 14 or 18): where the IP header starts."""
        self.header_len = self._headers.size
        """Bytes before the payload of an unfragmented datagram."""
        self.udp_checksum_offset = self.header_len - UDP_HLEN + UDP_CHECKSUM_OFFSET
        """Where the UDP checksum sits in the frame (the headers' last two bytes)."""
        self.max_udp_payload = family.max_udp_payload
        """The longest payload one datagram carries (65507 over IPv4, 65527 over IPv6)."""
        self._max_ip_id = family.max_ip_id
        self._addresses = (self.fields.src_ip, self.fields.dst_ip)
        layout = struct.Struct(f"!{self.udp_checksum_offset}sH")
        self._pack, self._pack_into = layout.pack, layout.pack_into
        self._kept: dict[int, tuple[bytes, int]] = {}

    def _for_length(self, payload_len: int) -> tuple[bytes, int]:
        """The headers before the UDP checksum and the checksum's base sum, for this payload length."""
        kept = self._kept.get(payload_len)
        if kept is None:
            check_int("payload_len", payload_len, 0, self.max_udp_payload)
            if len(self._kept) >= _KEPT_LENGTHS:
                self._kept.clear()
            headers = self._headers.whole(payload_len)
            udp_len = UDP_HLEN + payload_len
            base = ones_sum(headers[self.header_len - UDP_HLEN :], pseudo_header_sum(*self._addresses, udp_len))
            kept = self._kept[payload_len] = (headers[: self.udp_checksum_offset], base)
        return kept

    def frame_len(self, payload_len: int) -> int:
        """Bytes of the frame carrying ``payload_len`` bytes in one datagram."""
        return self.header_len + check_int("payload_len", payload_len, 0, self.max_udp_payload)

    def headers(self, payload_len: int) -> bytes:
        """The ``header_len`` header bytes for this payload length: lengths and the IPv4 checksum
        filled in, the UDP checksum field 0 (it depends on the payload; see ``udp_sum_base``)."""
        return self._for_length(payload_len)[0] + b"\0\0"

    def udp_sum_base(self, payload_len: int) -> int:
        """The folded ones'-complement sum of all the UDP checksum covers but the payload (pseudo-header
        and UDP header): the checksum is ``(ones_sum(payload, base) ^ 0xFFFF) or 0xFFFF``."""
        return self._for_length(payload_len)[1]

    def _checked(self, payload: BytesLike) -> tuple[BytesLike, bytes, int]:
        """The payload as a flat byte buffer, its headers before the checksum, and the UDP checksum."""
        if type(payload) is not bytes or len(payload) > self.max_udp_payload:
            payload = check_payload(payload, self.max_udp_payload)
        head, base = self._for_length(len(payload))
        return payload, head, (ones_sum(payload, base) ^ 0xFFFF) or 0xFFFF  # RFC 768: a computed 0 is sent as 0xFFFF

    def stamp(self, payload: BytesLike) -> bytes:
        """The frame carrying ``payload``: fixed headers with new lengths and checksums, no dpkt."""
        payload, head, udp_checksum = self._checked(payload)
        return self._pack(head, udp_checksum) + payload

    def stamp_into(self, buffer: bytearray | memoryview | mmap.mmap, offset: int, payload: BytesLike) -> int:
        """Write the frame for ``payload`` into writable ``buffer`` at ``offset``; return its length."""
        payload, head, udp_checksum = self._checked(payload)
        n = len(payload)
        end = offset + self.header_len + n
        if offset < 0 or end > len(buffer):
            raise UsageError(
                f"frame of {end - offset} bytes at offset {offset} does not fit a {len(buffer)}-byte buffer"
            )
        self._pack_into(buffer, offset, head, udp_checksum)
        buffer[end - n : end] = payload
        return end - offset

    def fragment_count(self, payload_len: int, mtu: int) -> int:
        """How many frames ``fragments`` makes of a ``payload_len``-byte payload at this MTU."""
        payload_len = check_int("payload_len", payload_len, 0, self.max_udp_payload)
        return len(fragment_spans(UDP_HLEN + payload_len, mtu, self.ip_version))

    def fragments(self, payload: BytesLike, mtu: int, ip_id: int) -> list[bytes]:
        """The fragments of one datagram carrying ``payload`` (one list item when it fits).

        IPv4: DF clear, ``ip_id`` 0-65535. IPv6: a Fragment header with identification ``ip_id``
        (0-4294967295) on each fragment, none when the packet fits. Same bytes as
        ``build_fragments`` with this template's fields.
        """
        payload, head, udp_checksum = self._checked(payload)
        ip_id = check_int("ip_id", ip_id, 0, self._max_ip_id)
        udp_start = self.header_len - UDP_HLEN
        datagram = head[udp_start:] + udp_checksum.to_bytes(2, "big") + payload
        spans = fragment_spans(len(datagram), mtu, self.ip_version)
        return self._headers.ip.fragments(self._headers.link, datagram, spans, ip_id)
