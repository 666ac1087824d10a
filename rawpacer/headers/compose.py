"""Header bytes written straight from the protocol tables (no dpkt): what ``FrameTemplate`` stamps
and ``reassemble`` rebuilds. The dpkt builders in ``build.py`` are the independent reference the
tests hold these bytes to.
"""

from __future__ import annotations

from rawpacer.headers.addresses import HeaderFields
from rawpacer.headers.checksum import fold, ones_sum
from rawpacer.headers.ethernet import ETHERNET
from rawpacer.headers.family import V4, Family, family_of
from rawpacer.headers.ipv4 import IPV4, IPV4_HLEN
from rawpacer.headers.ipv6 import FRAGMENT_HLEN, IP_PROTO_FRAGMENT, IPV6, IPV6_FRAGMENT
from rawpacer.headers.udp import IP_PROTO_UDP, UDP, UDP_HLEN
from rawpacer.headers.vlan import ETH_TYPE_8021Q, VLAN


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def link_header(fields: HeaderFields) -> bytes:
    """The Ethernet II header for the fields' IP version, with the 802.1Q tag when ``fields.vlan`` is set."""
    ethertype = family_of(fields.src_ip).ethertype
    macs = {"dst": _int(fields.dst_mac), "src": _int(fields.src_mac)}
    if fields.vlan is None:
        return ETHERNET.pack(**macs, type=ethertype)
    tag = VLAN.pack(priority=fields.vlan_priority, dei=int(fields.vlan_dei), vid=fields.vlan, type=ethertype)
    return ETHERNET.pack(**macs, type=ETH_TYPE_8021Q) + tag


class IPv4Header:
    """IPv4 headers (RFC 791) for one source and destination: whole datagrams and fragments.

    The header checksum is the complement of the precomputed sum of the fixed fields plus the
    varying ones (ones'-complement sums add in any order, RFC 1071), so each header is one pack.
    """

    def __init__(self, fields: HeaderFields) -> None:
        common = {"ttl": fields.ttl, "protocol": IP_PROTO_UDP, "src": _int(fields.src_ip), "dst": _int(fields.dst_ip)}
        whole = {"id": fields.ip_id, "df": int(fields.df)} | common
        self._whole = IPV4.packer(("total_length", "checksum"), **whole)
        self._whole_sum = ones_sum(IPV4.pack(**whole))
        self._fragment = IPV4.packer(("total_length", "id", "frag_offset", "checksum"), **common)
        self._fragment_sum = ones_sum(IPV4.pack(**common))

    def whole(self, payload_len: int) -> bytes:
        """The header of an unfragmented datagram carrying ``payload_len`` bytes (the template's id and DF)."""
        total = IPV4_HLEN + payload_len
        return self._whole(total, fold(self._whole_sum + total) ^ 0xFFFF)

    def fragments(self, link: bytes, data: bytes, spans: list[tuple[int, int, bool]], ident: int) -> list[bytes]:
        """``link`` + an IPv4 header + the span of ``data`` (the IP payload), one per span: DF clear,
        MF on all but the last, offset in 8-byte units. A single span is the whole datagram with
        DF clear and this id."""
        out, pack, base = [], self._fragment, self._fragment_sum + ident
        mf, offset = IPV4["mf"], IPV4["frag_offset"]
        for start, end, more in spans:
            total = IPV4_HLEN + end - start
            flags = mf.place(more) | offset.place(start >> 3)
            out.append(link + pack(total, ident, flags, fold(base + total + flags) ^ 0xFFFF) + data[start:end])
        return out


class IPv6Header:
    """IPv6 headers (RFC 8200) for one source and destination: whole packets and fragments."""

    def __init__(self, fields: HeaderFields) -> None:
        common = {
            "traffic_class": fields.traffic_class,
            "flow_label": fields.flow_label,
            "hop_limit": fields.ttl,
            "src": _int(fields.src_ip),
            "dst": _int(fields.dst_ip),
        }
        self._whole = IPV6.packer(("payload_length",), next_header=IP_PROTO_UDP, **common)
        self._fragment = IPV6.packer(("payload_length",), next_header=IP_PROTO_FRAGMENT, **common)
        self._fragment_header = IPV6_FRAGMENT.packer(("offset", "id"), next_header=IP_PROTO_UDP)

    def whole(self, payload_len: int) -> bytes:
        """The header of an unfragmented packet carrying ``payload_len`` bytes."""
        return self._whole(payload_len)

    def fragments(self, link: bytes, data: bytes, spans: list[tuple[int, int, bool]], ident: int) -> list[bytes]:
        """``link`` + an IPv6 header and Fragment header + the span of ``data`` (the fragmentable
        part), one per span (RFC 8200, section 4.5). A single span is the whole packet, with no
        Fragment header."""
        if len(spans) == 1:
            return [link + self._whole(len(data)) + data]
        offset, more_flag = IPV6_FRAGMENT["offset"], IPV6_FRAGMENT["more"]
        return [
            link
            + self._fragment(FRAGMENT_HLEN + end - start)
            + self._fragment_header(offset.place(start >> 3) | more_flag.place(more), ident)
            + data[start:end]
            for start, end, more in spans
        ]


class FrameHeaders:
    """Every header of frames (or IP packets, ``ethernet=False``) to one destination."""

    def __init__(self, fields: HeaderFields, ethernet: bool) -> None:
        self.family: Family = family_of(fields.src_ip)
        self.link = link_header(fields) if ethernet else b""
        self.ip = IPv4Header(fields) if self.family is V4 else IPv6Header(fields)
        self._udp = UDP.packer(("length",), sport=fields.sport, dport=fields.dport)
        self.size = len(self.link) + self.family.header_len + UDP_HLEN
        """Bytes before the payload of an unfragmented datagram."""

    def whole(self, payload_len: int) -> bytes:
        """Link, IP and UDP headers for ``payload_len`` bytes of payload, UDP checksum field 0."""
        udp_len = UDP_HLEN + payload_len
        return self.link + self.ip.whole(udp_len) + self._udp(udp_len)
