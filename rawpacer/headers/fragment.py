"""Source fragmentation of one UDP datagram (IPv4: RFC 791; IPv6: RFC 8200 section 4.5), and the
reassembly that undoes it.

The UDP header (with the checksum over the whole payload) goes in the first fragment; every
fragment but the last carries a multiple of 8 bytes; all share one identification. IPv4 fragments
have DF clear and MF set on all but the last; IPv6 fragments carry a Fragment header (next header
44, 32-bit identification, offset in 8-byte units, M flag). Each fragment's IP packet is at most
``mtu`` bytes, so it carries ``(mtu - IP header - Fragment header) // 8 * 8`` bytes: 1480 for IPv4
and 1448 for IPv6 at MTU 1500.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rawpacer.errors import require
from rawpacer.headers.addresses import DEFAULT_MAC, HeaderFields, header_fields, parse_mac
from rawpacer.headers.build import dpkt_datagram, dpkt_ethernet, dpkt_ip, dpkt_ip6, packed
from rawpacer.headers.checksum import BytesLike
from rawpacer.headers.compose import FrameHeaders
from rawpacer.headers.family import V4, family
from rawpacer.headers.fit import check_mtu
from rawpacer.headers.parse import Fragment, parse_fragment
from rawpacer.headers.udp import UDP_HLEN

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack for **kwargs needs Python 3.12

    from rawpacer.headers.addresses import FieldArgs


def fragment_spans(ip_payload_len: int, mtu: int, ip_version: int = 4) -> list[tuple[int, int, bool]]:
    """``(start, end, more_fragments)`` byte ranges of the IP payload, one per fragment at this MTU."""
    fam = family(ip_version)
    if fam.header_len + ip_payload_len <= check_mtu(mtu, ip_version):
        return [(0, ip_payload_len, False)]
    step = (mtu - fam.header_len - fam.fragment_header_len) // 8 * 8
    starts = range(0, ip_payload_len, step)
    return [(s, min(s + step, ip_payload_len), s + step < ip_payload_len) for s in starts]


def build_fragments(
    dport: int, payload: BytesLike, mtu: int, *, ethernet: bool = True, **fields: Unpack[FieldArgs]
) -> list[bytes]:
    """The fragments (frames, or IP packets when ``ethernet=False``) of one UDP datagram, built with dpkt.

    A datagram that fits the MTU comes back as a one-item list: over IPv4 with DF clear and this
    ``ip_id``, over IPv6 a whole packet with no Fragment header. ``ip_id`` is 0-65535 for IPv4 and
    0-4294967295 for IPv6; ``df`` is refused (fragments always have it clear).
    """
    require("df" not in fields, f"df {fields.get('df')!r} is not taken by build_fragments: fragments have DF clear")
    checked = header_fields(dport, ethernet=ethernet, fragments=True, **fields)
    fam = family(checked.ip_version)
    whole, udp = dpkt_datagram(checked, payload)
    datagram = packed(whole, udp)[fam.header_len :]
    spans = fragment_spans(len(datagram), mtu, fam.version)
    if fam is V4:
        ips = [dpkt_ip(checked, datagram[s:e], ip_id=checked.ip_id, df=False, mf=m, offset=s // 8) for s, e, m in spans]
    elif len(spans) == 1:
        ips = [whole]
    else:
        ips = [dpkt_ip6(checked, datagram[s:e], fragment=(s // 8, m, checked.ip_id)) for s, e, m in spans]
    return [bytes(dpkt_ethernet(checked, ip) if ethernet else ip) for ip in ips]


def _one_datagram(parts: list[Fragment]) -> bytes:
    first = parts[0]
    key = (first.src_ip, first.dst_ip, first.ip_id)
    data = b""
    for i, part in enumerate(parts):
        if (part.src_ip, part.dst_ip, part.ip_id) != key:
            raise ValueError(f"fragment {i} belongs to datagram {(part.src_ip, part.dst_ip, part.ip_id)}, not {key}")
        if part.frag_offset != len(data):
            raise ValueError(f"fragment at offset {part.frag_offset} does not follow the {len(data)} bytes before it")
        if part.mf != (i < len(parts) - 1):
            raise ValueError(f"fragment at offset {part.frag_offset} has mf={part.mf}, wrong for its position")
        data += part.data
    return data


def _fields(first: Fragment) -> HeaderFields:
    """The header fields of the whole datagram the fragments came from (its first fragment's)."""
    address_family = socket.AF_INET if first.ip_version == 4 else socket.AF_INET6
    return HeaderFields(
        dport=0,
        sport=0,
        src_ip=socket.inet_pton(address_family, first.src_ip),
        dst_ip=socket.inet_pton(address_family, first.dst_ip),
        src_mac=parse_mac("src_mac", first.src_mac or DEFAULT_MAC),
        dst_mac=parse_mac("dst_mac", first.dst_mac or DEFAULT_MAC),
        ttl=first.ttl,
        ip_id=first.ip_id,
        df=False,
        traffic_class=first.traffic_class,
        flow_label=first.flow_label,
        vlan=first.vlan,
        vlan_priority=first.vlan_priority or 0,
        vlan_dei=bool(first.vlan_dei),
    )


def reassemble(frames: Iterable[BytesLike], *, ethernet: bool = True) -> bytes:
    """Rebuild one whole frame (or IP packet) from all fragments of one datagram, in any order.

    The result is what ``build_frame`` makes of the datagram: for IPv4 DF, MF and offset clear and
    a fresh header checksum, for IPv6 no Fragment header; so ``parse_frame`` reads it. ValueError
    if a fragment is missing, overlaps, or belongs to another datagram.
    """
    parts = sorted((parse_fragment(f, ethernet=ethernet) for f in frames), key=lambda p: p.frag_offset)
    if not parts:
        raise ValueError("no fragments to reassemble")
    if len({p.ip_version for p in parts}) > 1:
        raise ValueError("fragments of IPv4 and IPv6 datagrams mixed")
    data = _one_datagram(parts)
    fam = family(parts[0].ip_version)
    if len(data) > UDP_HLEN + fam.max_udp_payload:
        raise ValueError(
            f"reassembled {fam.name} payload of {len(data)} bytes exceeds {UDP_HLEN + fam.max_udp_payload}"
        )
    headers = FrameHeaders(_fields(parts[0]), ethernet)
    return headers.link + headers.ip.whole(len(data)) + data
