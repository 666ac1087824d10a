"""Map every UDP flow of a capture onto the sandbox, so replayed frames reach its readers.

Each distinct (destination address, destination port) of the capture is one flow; flows are numbered
in order of first appearance and each gets the next reader port. A UDP frame leaves with the
sandbox's MACs and addresses (writer's side as source, readers' side as destination), its flow's
port, the source port it had, and the sandbox's VLAN tag (or none); its IPv4 header checksum and UDP
checksum are updated incrementally (RFC 1624, eqn. 3), not recomputed, so a frame whose checksum was
valid stays valid and one that was not stays not. A UDP checksum of 0 ("none", RFC 768) stays 0.

Fragments: the first fragment (offset 0) carries the UDP header and says the flow; later fragments
follow it by (source, destination, identification) (RFC 791; RFC 8200, section 4.5), so only their
addresses change, and the fragment that completes the datagram carries its payload. A later fragment met before its first one cannot be placed: it is counted in
``Rewriter.unsupported`` and passes unchanged, as does a UDP datagram of an IP version the sandbox
has no address for, one cut by the snapshot length, or one behind more than one VLAN tag. Frames that
are not UDP pass unchanged (raw-IP captures still get an Ethernet header, as every frame must).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from rawpacer.errors import UsageError, require
from rawpacer.headers.addresses import check_int, parse_ip, parse_mac
from rawpacer.headers.checksum import fold, ones_sum
from rawpacer.headers.ethernet import ETH_HLEN, ETHERNET
from rawpacer.headers.family import V4, V6, family_of
from rawpacer.headers.ipv4 import ETH_TYPE_IPV4, IP_MF, IP_OFFMASK, IPV4, IPV4_HLEN
from rawpacer.headers.ipv6 import ETH_TYPE_IPV6, FRAGMENT_HLEN, IP_PROTO_FRAGMENT, IPV6, IPV6_FRAGMENT, IPV6_HLEN
from rawpacer.headers.udp import IP_PROTO_UDP, UDP, UDP_HLEN
from rawpacer.headers.vlan import ETH_TYPE_8021Q, MAX_VLAN_ID, MIN_VLAN_ID, VLAN, VLAN_HLEN
from rawpacer.target import Target
from rawpacer.traffic.capture import LinkType, Record

ETH_TYPE_8021AD = 0x88A8
"""The service tag (IEEE 802.1ad) a double-tagged frame starts with: not rewritten."""

IPV6_EXTENSIONS = frozenset({0, 43, 60})
"""Hop-by-Hop Options, Routing and Destination Options (RFC 8200, section 4): walked over to reach UDP;
their length byte counts 8-octet units beyond the first 8."""

MAX_PENDING = 256
"""Fragmented datagrams followed at once: a capture that interleaves more drops the oldest (its later
fragments then pass unchanged, counted), so memory stays bounded whatever the capture's length."""

_LINK_VERSION = {LinkType.IPV4: 4, LinkType.IPV6: 6}
_ETHERTYPE = {4: ETH_TYPE_IPV4, 6: ETH_TYPE_IPV6}
_TYPE_AT = ETHERNET.offset("type")
_U16 = struct.Struct("!H")
_ADDRESSES = {
    version: slice(table.offset("src"), table.offset("dst") + table["dst"].width)
    for version, table in ((4, IPV4), (6, IPV6))
}
"""Where the source and destination addresses sit (together) in each version's header."""
_DST = {
    version: slice(table.offset("dst"), table.offset("dst") + table["dst"].width)
    for version, table in ((4, IPV4), (6, IPV6))
}
_V4_FLAGS = IPV4.offset("reserved")
_V4_CHECKSUM = IPV4.offset("checksum")
_UDP_DPORT = UDP.offset("dport")
_UDP_LENGTH = UDP.offset("length")
_UDP_CHECKSUM = UDP.offset("checksum")
_VID_MASK = VLAN["vid"].mask


@dataclass(frozen=True)
class Endpoints:
    """Where replayed UDP goes: the writer's and readers' MACs, an address pair per IP version
    (writer's, readers'), packed, and the 802.1Q tag frames carry (None: untagged)."""

    writer_mac: bytes
    reader_mac: bytes
    addresses: Mapping[int, tuple[bytes, bytes]]
    vlan: int | None = None

    @classmethod
    def of(cls, target: Target) -> Endpoints:
        """The sandbox a fan-out ``target`` describes (its link's MACs, its addresses, its tag)."""
        return make_endpoints(
            target.link.src_mac, target.link.dst_mac, (target.src_ip, target.dst_ip), vlan=target.vlan
        )


def make_endpoints(writer_mac: str, reader_mac: str, *pairs: tuple[str, str], vlan: int | None = None) -> Endpoints:
    """Endpoints from text: MACs, then one (writer address, reader address) pair per IP version."""
    addresses: dict[int, tuple[bytes, bytes]] = {}
    for writer_ip, reader_ip in pairs:
        src, dst = parse_ip("writer ip", writer_ip), parse_ip("reader ip", reader_ip)
        require(len(src) == len(dst), f"writer ip {writer_ip} and reader ip {reader_ip} are of different IP versions")
        version = family_of(src).version
        require(version not in addresses, f"IPv{version} addresses given twice ({writer_ip}, {reader_ip})")
        addresses[version] = (src, dst)
    require(bool(addresses), "the sandbox needs a (writer ip, reader ip) pair")
    tag = None if vlan is None else check_int("vlan", vlan, MIN_VLAN_ID, MAX_VLAN_ID)
    return Endpoints(parse_mac("writer mac", writer_mac), parse_mac("reader mac", reader_mac), addresses, tag)


@dataclass(frozen=True)
class Rewritten:
    """One frame as it is to be sent; for UDP its flow (from 0), reader port and the payload the reader
    should receive (for a fragmented datagram: the whole datagram's, on the fragment that completes it,
    and None on the others); flow None when the frame passed unchanged."""

    frame: bytes
    flow: int | None
    port: int | None
    payload: memoryview | bytes | None


def update_checksum(checksum: int, old: bytes, new: bytes) -> int:
    """RFC 1624, eqn. 3, for a run of 16-bit words changed from ``old`` to ``new``: HC' = ~(~HC + ~m + m').

    ``~m`` summed over the words is ``0xFFFF - ones_sum(old)`` (ones'-complement negation), so one
    pass over each run does it, whatever else the checksum covers.
    """
    return ~fold((~checksum & 0xFFFF) + (0xFFFF - ones_sum(old)) + ones_sum(new)) & 0xFFFF


@dataclass
class _Datagram:
    """What the IP header walk found: the version, where UDP starts (None in a later fragment) and, for
    a fragment, its key, where its share of the datagram starts in the frame and in the datagram
    (bytes), and whether more follow."""

    version: int
    end: int
    """Where the IP packet ends (its length field's word): beyond the captured bytes when the snapshot cut it."""
    udp: int | None
    fragment: tuple[bytes, int] | None = None
    data_at: int = 0
    offset: int = 0
    more: bool = False


@dataclass
class _Pending:
    """A fragmented datagram met by its first fragment: its flow, port and the pieces seen so far."""

    flow: int
    port: int
    pieces: dict[int, bytes]
    total: int | None = None

    def add(self, walk: _Datagram, data: bytes) -> bytes | None:
        """Keep one fragment's data; the whole UDP datagram once every piece is in (RFC 791, RFC 8200 4.5)."""
        self.pieces[walk.offset] = bytes(data[walk.data_at : walk.end])
        if not walk.more:
            self.total = walk.offset + walk.end - walk.data_at
        at = 0
        for offset in sorted(self.pieces):
            if offset != at:
                return None
            at += len(self.pieces[offset])
        return b"".join(self.pieces[o] for o in sorted(self.pieces)) if at == self.total else None


class Rewriter:
    """Rewrites a capture's frames onto one sandbox, numbering its UDP flows as it meets them.

    ``ports`` gives each new flow its reader port (``target.ports``, or ``itertools.count(5001)``);
    running out is a UsageError. ``flows`` maps (original destination address, port) to the flow's
    number and port; ``unsupported`` counts, by reason, the UDP frames that passed unchanged.
    """

    def __init__(self, sandbox: Endpoints, ports: Iterable[int]) -> None:
        self.sandbox = sandbox
        self._ports: Iterator[int] = iter(ports)
        self.flows: dict[tuple[bytes, int], tuple[int, int]] = {}
        self._pending: dict[tuple[bytes, int], _Pending] = {}
        self.unsupported: Counter[str] = Counter()
        self.passed = 0
        """Frames that are not UDP, sent as they were."""

    @classmethod
    def for_target(cls, target: Target) -> Rewriter:
        """A Rewriter onto the sandbox of ``target``, flows taking its reader ports in order."""
        return cls(Endpoints.of(target), target.ports)

    def rewrite(self, record: Record) -> Rewritten:
        """``record`` as it is to be sent (see the module's docstring for what changes)."""
        return self.rewrite_frame(record.data, record.link)

    def rewrite_frame(self, data: bytes, link: LinkType) -> Rewritten:
        """The frame ``data`` captured on ``link`` as it is to be sent."""
        if link is LinkType.ETHERNET:
            start, ethertype, tci = _ethernet(data)
            if ethertype in (ETH_TYPE_8021Q, ETH_TYPE_8021AD):
                self.unsupported["more than one VLAN tag"] += 1
                return self._unchanged(data, link, ethertype)
        else:
            start, tci = 0, None
            version = _LINK_VERSION.get(link) or (data[0] >> 4 if data else 0)
            ethertype = _ETHERTYPE.get(version, 0)
        walk = None
        if ethertype == ETH_TYPE_IPV4:
            walk = _walk_v4(data, start)
        elif ethertype == ETH_TYPE_IPV6:
            walk = _walk_v6(data, start)
        if walk is None:
            self.passed += 1
            return self._unchanged(data, link, ethertype)
        reason = self._unsupported(walk, len(data))
        if reason:
            self.unsupported[reason] += 1
            return self._unchanged(data, link, ethertype)
        if walk.udp is None:
            assert walk.fragment is not None
            pending = self._pending[walk.fragment]
            frame = bytes(self._moved(data, start, walk, ethertype, tci)[0])
            return Rewritten(frame, pending.flow, pending.port, self._reassembled(walk, data, pending))
        return self._udp(data, start, walk, ethertype, tci)

    def _unsupported(self, walk: _Datagram, captured: int) -> str:
        """Why a UDP frame cannot be rewritten ("" when it can)."""
        if walk.version not in self.sandbox.addresses:
            return f"IPv{walk.version} UDP with no IPv{walk.version} sandbox address"
        if walk.end > captured or (walk.udp is not None and walk.udp + UDP_HLEN > walk.end):
            return "cut by the snapshot length"
        if walk.udp is None and walk.fragment not in self._pending:
            return "a later fragment before its first"
        return ""

    def _udp(self, data: bytes, start: int, walk: _Datagram, ethertype: int, tci: int | None) -> Rewritten:
        udp = walk.udp
        assert udp is not None
        dport, length, checksum = struct.unpack_from("!HHH", data, udp + _UDP_DPORT)
        addresses, dst = _ADDRESSES[walk.version], _DST[walk.version]
        flow, port = self.flow(bytes(data[start + dst.start : start + dst.stop]), dport)
        out, at = self._moved(data, start, walk, ethertype, tci)
        _U16.pack_into(out, udp + at + _UDP_DPORT, port)
        if checksum:  # 0: sent without a checksum (RFC 768), left so
            old = data[start + addresses.start : start + addresses.stop] + data[udp + _UDP_DPORT : udp + _UDP_LENGTH]
            new = b"".join(self.sandbox.addresses[walk.version]) + _U16.pack(port)
            _U16.pack_into(out, udp + at + _UDP_CHECKSUM, update_checksum(checksum, old, new) or 0xFFFF)
        frame = bytes(out)
        if walk.fragment is None:
            end = min(udp + length, walk.end)  # a UDP length past the IP packet's end is the sender's error
            return Rewritten(frame, flow, port, memoryview(frame)[udp + at + UDP_HLEN : end + at])
        pending = self._pending[walk.fragment] = _Pending(flow, port, {})
        if len(self._pending) > MAX_PENDING:  # the oldest datagram's other fragments will never come
            del self._pending[next(iter(self._pending))]
        return Rewritten(frame, flow, port, self._reassembled(walk, data, pending))

    def _reassembled(self, walk: _Datagram, data: bytes, pending: _Pending) -> bytes | None:
        """The UDP payload of a fragmented datagram once this fragment completes it (None before)."""
        datagram = pending.add(walk, data)
        if datagram is None:
            return None
        assert walk.fragment is not None
        del self._pending[walk.fragment]
        return datagram[UDP_HLEN : _U16.unpack_from(datagram, _UDP_LENGTH)[0]]

    def _moved(
        self, data: bytes, start: int, walk: _Datagram, ethertype: int, tci: int | None
    ) -> tuple[bytearray, int]:
        """The frame behind the sandbox's link header, with its addresses (and IPv4's header checksum
        updated), and how far the IP header moved."""
        link = self._link(ethertype, tci)
        out = bytearray(link)
        out += data[start:]
        addresses = _ADDRESSES[walk.version]
        new = b"".join(self.sandbox.addresses[walk.version])
        out[len(link) + addresses.start : len(link) + addresses.stop] = new
        if walk.version == V4.version:
            old = data[start + addresses.start : start + addresses.stop]
            checksum = _U16.unpack_from(data, start + _V4_CHECKSUM)[0]
            _U16.pack_into(out, len(link) + _V4_CHECKSUM, update_checksum(checksum, old, new))
        return out, len(link) - start

    def flow(self, dst: bytes, dport: int) -> tuple[int, int]:
        """The (number, reader port) of the flow to ``dst`` (packed address) port ``dport``: the one flow
        table, numbered in order of first appearance (the C lane asks it too)."""
        key = (dst, dport)
        known = self.flows.get(key)
        if known is None:
            port = next(self._ports, None)
            if port is None:
                raise UsageError(f"the capture has more UDP flows than the {len(self.flows)} reader ports given")
            known = self.flows[key] = (len(self.flows), port)
        return known

    def _link(self, ethertype: int, tci: int | None) -> bytes:
        """The Ethernet header a rewritten frame leaves with: the sandbox's MACs and tag (the captured
        tag's priority kept), then the IP ethertype."""
        head = self.sandbox.reader_mac + self.sandbox.writer_mac
        if self.sandbox.vlan is not None:
            head += _U16.pack(ETH_TYPE_8021Q) + _U16.pack(((tci or 0) & ~_VID_MASK) | self.sandbox.vlan)
        return head + _U16.pack(ethertype)

    def _unchanged(self, data: bytes, link: LinkType, ethertype: int) -> Rewritten:
        """A frame sent as captured (after an Ethernet header with the sandbox's MACs for a raw-IP capture)."""
        if link is not LinkType.ETHERNET:
            data = self.sandbox.reader_mac + self.sandbox.writer_mac + _U16.pack(ethertype) + data
        return Rewritten(data, None, None, None)


def _ethernet(data: bytes) -> tuple[int, int, int | None]:
    """Where the IP header starts, the ethertype and the 802.1Q tag control information (None: untagged)."""
    if len(data) < ETH_HLEN:
        return len(data), 0, None
    ethertype = _U16.unpack_from(data, _TYPE_AT)[0]
    if ethertype != ETH_TYPE_8021Q:
        return ETH_HLEN, ethertype, None
    if len(data) < ETH_HLEN + VLAN_HLEN:
        return len(data), 0, None
    tci, inner = struct.unpack_from("!HH", data, ETH_HLEN)
    return ETH_HLEN + VLAN_HLEN, inner, tci


def _walk_v4(data: bytes, ip: int) -> _Datagram | None:
    """The UDP datagram (or fragment of one) in the IPv4 header at ``ip``; None when it is not UDP."""
    if len(data) < ip + IPV4_HLEN or data[ip] >> 4 != V4.version or data[ip + IPV4.offset("protocol")] != IP_PROTO_UDP:
        return None
    ihl = (data[ip] & 0xF) * 4
    if ihl < IPV4_HLEN:  # RFC 791: the header is at least 5 words; a shorter one is no datagram to rewrite
        return None
    flags = _U16.unpack_from(data, ip + _V4_FLAGS)[0]
    offset, more = flags & IP_OFFMASK, bool(flags & IP_MF)
    key = None
    if offset or more:  # RFC 791: a fragment is named by source, destination, protocol and identification
        addresses = _ADDRESSES[V4.version]
        key = (
            bytes(data[ip + addresses.start : ip + addresses.stop]),
            _U16.unpack_from(data, ip + IPV4.offset("id"))[0],
        )
    end = ip + _U16.unpack_from(data, ip + IPV4.offset("total_length"))[0]
    return _Datagram(V4.version, end, None if offset else ip + ihl, key, ip + ihl, offset * 8, more)


def _walk_v6(data: bytes, ip: int) -> _Datagram | None:
    """The UDP datagram (or fragment) in the IPv6 packet at ``ip``, past its extension headers; None if not UDP."""
    if len(data) < ip + IPV6_HLEN or data[ip] >> 4 != V6.version:
        return None
    header, at = data[ip + IPV6.offset("next_header")], ip + IPV6_HLEN
    key, offset, more, data_at = None, 0, False, 0
    while at + 2 <= len(data):
        if header in IPV6_EXTENSIONS:
            header, at = data[at], at + (data[at + 1] + 1) * 8
        elif header == IP_PROTO_FRAGMENT and at + FRAGMENT_HLEN <= len(data):
            fields = IPV6_FRAGMENT.unpack_from(data, at)
            addresses = _ADDRESSES[V6.version]
            key = (bytes(data[ip + addresses.start : ip + addresses.stop]), fields["id"])
            offset, more = fields["offset"], bool(fields["more"])
            header, at = fields["next_header"], at + FRAGMENT_HLEN
            data_at = at
            if offset:
                break
        else:
            break
    if header != IP_PROTO_UDP:
        return None
    end = ip + IPV6_HLEN + _U16.unpack_from(data, ip + IPV6.offset("payload_length"))[0]
    return _Datagram(V6.version, end, None if offset else at, key, data_at, offset * 8, more)
