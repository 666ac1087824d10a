"""FrameTemplate: the headers for one destination built once (with dpkt), stamped onto each payload.

Per call only the lengths and the two checksums change. The IPv4 checksum is the precomputed sum of
the fixed header words plus the total length; the UDP checksum is the precomputed pseudo-header and
port sum plus twice the UDP length (it is in the pseudo-header and in the UDP header) plus the
payload's sum, which is the one pass over the data (the C extension when built). The bytes equal
``build_frame``'s (``build_packet``'s when ``ethernet=False``) for every input.
"""

from __future__ import annotations

import struct

from rawpacer.errors import UsageError
from rawpacer.headers.addresses import (
    DEFAULT_IP,
    DEFAULT_MAC,
    DEFAULT_SPORT,
    DEFAULT_TTL,
    MAX_UDP_PAYLOAD,
    check_int,
    check_payload,
    header_fields,
)
from rawpacer.headers.build import build_frame, build_packet
from rawpacer.headers.checksum import BytesLike, add, ones_sum
from rawpacer.headers.fit import ETH_HLEN, IPV4_HLEN, UDP_HLEN
from rawpacer.headers.fragment import fragment_spans
from rawpacer.headers.parse import IP_MF, IP_PROTO_UDP

_HEADERS = IPV4_HLEN + UDP_HLEN
_FRAGMENT_IP = struct.Struct("!HHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


class FrameTemplate:
    """Frames (or IP packets, ``ethernet=False``) to one destination, re-stamped per payload."""

    def __init__(
        self,
        dport: int,
        *,
        sport: int = DEFAULT_SPORT,
        src_ip: str = DEFAULT_IP,
        dst_ip: str = DEFAULT_IP,
        src_mac: str = DEFAULT_MAC,
        dst_mac: str = DEFAULT_MAC,
        ttl: int = DEFAULT_TTL,
        ip_id: int = 0,
        df: bool = True,
        ethernet: bool = True,
    ) -> None:
        self.fields = header_fields(
            dport,
            sport=sport,
            src_ip=src_ip,
            dst_ip=dst_ip,
            src_mac=src_mac,
            dst_mac=dst_mac,
            ttl=ttl,
            ip_id=ip_id,
            df=df,
        )
        self.ethernet = bool(ethernet)
        if self.ethernet:
            proto = build_frame(
                dport,
                b"",
                sport=sport,
                src_ip=src_ip,
                dst_ip=dst_ip,
                src_mac=src_mac,
                dst_mac=dst_mac,
                ttl=ttl,
                ip_id=ip_id,
                df=df,
            )
        else:
            proto = build_packet(dport, b"", sport=sport, src_ip=src_ip, dst_ip=dst_ip, ttl=ttl, ip_id=ip_id, df=df)
        ip = ETH_HLEN if self.ethernet else 0
        self.header_len = ip + _HEADERS
        self._link = proto[:ip]
        fixed_ip = proto[ip : ip + 2] + b"\0\0" + proto[ip + 4 : ip + 10] + b"\0\0" + proto[ip + 12 : ip + 20]
        self._ip_sum = ones_sum(fixed_ip)
        self._ip_base_sum = ones_sum(proto[ip : ip + 2] + proto[ip + 8 : ip + 10] + proto[ip + 12 : ip + 20])
        self._udp_sum = ones_sum(proto[ip + 12 : ip + 24], IP_PROTO_UDP)
        layout = struct.Struct(f"!{ip + 2}sH6sH12sHH")
        self._pack, self._pack_into = layout.pack, layout.pack_into
        self._head, self._mid1, self._mid2 = proto[: ip + 2], proto[ip + 4 : ip + 10], proto[ip + 12 : ip + 24]

    def _sums(self, n: int, payload: BytesLike) -> tuple[int, int, int, int]:
        if n > MAX_UDP_PAYLOAD:
            check_payload(payload)
        ulen = n + UDP_HLEN
        s = self._ip_sum + ulen + IPV4_HLEN
        ip_ck = ((s & 0xFFFF) + (s >> 16)) ^ 0xFFFF
        udp_ck = (ones_sum(payload, self._udp_sum + ulen + ulen) ^ 0xFFFF) or 0xFFFF
        return ulen + IPV4_HLEN, ip_ck, ulen, udp_ck

    def stamp(self, payload: BytesLike) -> bytes:
        """The frame carrying ``payload``: fixed headers with new lengths and checksums, no dpkt."""
        if type(payload) is not bytes:
            payload = check_payload(payload)
        total, ip_ck, ulen, udp_ck = self._sums(len(payload), payload)
        return self._pack(self._head, total, self._mid1, ip_ck, self._mid2, ulen, udp_ck) + payload

    def stamp_into(self, buffer: bytearray | memoryview, offset: int, payload: BytesLike) -> int:
        """Write the frame for ``payload`` into writable ``buffer`` at ``offset``; return its length."""
        if type(payload) is not bytes:
            payload = check_payload(payload)
        n = len(payload)
        end = offset + self.header_len + n
        if offset < 0 or end > len(buffer):
            raise UsageError(
                f"frame of {end - offset} bytes at offset {offset} does not fit a {len(buffer)}-byte buffer"
            )
        total, ip_ck, ulen, udp_ck = self._sums(n, payload)
        self._pack_into(buffer, offset, self._head, total, self._mid1, ip_ck, self._mid2, ulen, udp_ck)
        buffer[end - n : end] = payload
        return end - offset

    def fragments(self, payload: BytesLike, mtu: int, ip_id: int) -> list[bytes]:
        """RFC 791 fragments of one datagram carrying ``payload`` (DF clear, one list item when it fits).

        Same bytes as ``build_fragments`` with this template's fields.
        """
        payload = check_payload(payload)
        ip_id = check_int("ip_id", ip_id, 0, 65535)
        _, _, ulen, udp_ck = self._sums(len(payload), payload)
        datagram = _UDP.pack(self.fields.sport, self.fields.dport, ulen, udp_ck) + payload
        base = add(self._ip_base_sum, ip_id)
        out = []
        for start, end, more in fragment_spans(ulen, mtu):
            total = IPV4_HLEN + end - start
            flags = (IP_MF if more else 0) | start >> 3
            ip_ck = add(add(base, total), flags) ^ 0xFFFF
            out.append(
                self._link
                + _FRAGMENT_IP.pack(
                    0x4500,
                    total,
                    ip_id,
                    flags,
                    self.fields.ttl,
                    IP_PROTO_UDP,
                    ip_ck,
                    self.fields.src_ip,
                    self.fields.dst_ip,
                )
                + datagram[start:end]
            )
        return out
