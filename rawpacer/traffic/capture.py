"""A streaming reader of capture files: classic pcap and pcapng, one frame at a time.

``read_capture(path)`` yields a ``Record`` per frame and holds one block in memory at a time, so a
capture of any length replays in bounded memory. The formats are the IETF OPSAWG drafts:

- classic pcap, draft-ietf-opsawg-pcap (section 4, the file header; section 5, the packet record):
  the magic says the byte order and whether the second timestamp word counts micro- or nanoseconds;
- pcapng, draft-ietf-opsawg-pcapng (section 3, the general block structure; 4.1, the Section Header
  Block, whose byte-order magic sets the order of its whole section; 4.2, the Interface Description
  Block, whose ``if_tsresol`` option gives the timestamp unit; 4.3, the Enhanced Packet Block; 4.4, the
  Simple Packet Block; appendix, the obsolete Packet Block). Every other block type is skipped, as
  section 3 tells readers to do.

Only link types rawpacer can rewrite and send are accepted (``LinkType``): Ethernet and raw IP. Bad
input raises ``CaptureError`` with one line; a truncated file raises it after yielding every whole
frame before the cut.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO, NoReturn

from rawpacer.errors import CaptureError


class LinkType(IntEnum):
    """The LINKTYPE_ values (tcpdump.org link-layer header types; draft-ietf-opsawg-pcaplinktype) rawpacer reads."""

    ETHERNET = 1
    """IEEE 802.3 Ethernet: every frame starts with the Ethernet header."""
    RAW = 101
    """Raw IP: every frame starts with an IPv4 or IPv6 header (its version nibble says which)."""
    IPV4 = 228
    """Raw IPv4 only."""
    IPV6 = 229
    """Raw IPv6 only."""


_LINK_TYPES = frozenset(LinkType)

OTHER_LINK_TYPES = {
    0: "NULL (BSD loopback)",
    105: "IEEE802_11",
    113: "LINUX_SLL (Linux cooked capture)",
    127: "IEEE802_11_RADIO",
    276: "LINUX_SLL2 (Linux cooked capture v2)",
}
"""Names of common link types rawpacer does not read, for the error message."""

MAX_FRAME = 262144
"""Largest captured frame accepted: libpcap's and Wireshark's standard maximum (WTAP_MAX_PACKET_SIZE_STANDARD);
a larger length in a record header means a corrupt file, not a frame to allocate."""

MAX_BLOCK = 16 * 1024 * 1024
"""Largest pcapng block accepted (Wireshark's MAX_BLOCK_SIZE): the bound on what one read holds."""


@dataclass(frozen=True)
class Record:
    """One captured frame: its place in the file (from 0), when it was captured (ns since the epoch),
    the link type its bytes start with, the bytes captured and the frame's length on the wire
    (``orig_len`` > ``len(data)`` when the capture's snapshot length cut it)."""

    index: int
    time_ns: int
    link: LinkType
    data: bytes
    orig_len: int


class Table:
    """One fixed-size header as a field table (name, struct code), unpacked in either byte order."""

    def __init__(self, name: str, *fields: tuple[str, str]) -> None:
        self.name = name
        self.names = tuple(f for f, _ in fields)
        codes = "".join(code for _, code in fields)
        self.structs = {order: struct.Struct(order + codes) for order in "<>"}
        self.size = self.structs["<"].size

    def unpack(self, order: str, data: bytes, offset: int = 0) -> dict[str, int]:
        """Every field of the header at ``offset`` of ``data``, read in ``order`` ("<" or ">")."""
        return dict(zip(self.names, self.structs[order].unpack_from(data, offset)))


# draft-ietf-opsawg-pcap, section 4: the File Header. The link type is the low 16 bits of the last
# word; its upper bits say whether frames carry an FCS, which rawpacer leaves in the frame as captured.
PCAP_HEADER = Table(
    "pcap file header",
    ("magic", "I"),
    ("major", "H"),
    ("minor", "H"),
    ("reserved1", "I"),
    ("reserved2", "I"),
    ("snaplen", "I"),
    ("linktype", "I"),
)
# Section 5: the Packet Record header; the data follows.
PCAP_RECORD = Table("pcap packet record", ("seconds", "I"), ("fraction", "I"), ("caplen", "I"), ("orig_len", "I"))

PCAP_MAGIC_US = 0xA1B2C3D4
"""Classic pcap, timestamps in seconds and microseconds (section 4)."""
PCAP_MAGIC_NS = 0xA1B23C4D
"""Classic pcap, timestamps in seconds and nanoseconds (section 4)."""
_LINKTYPE_MASK = 0xFFFF

# draft-ietf-opsawg-pcapng, section 3.1: every block is type, total length, body, total length again.
BLOCK_HEADER = Table("pcapng block header", ("type", "I"), ("length", "I"))
BLOCK_TRAILER_LEN = 4
SHB_TYPE = 0x0A0D0D0A
"""Section 4.1: a palindrome, so it reads the same in either byte order before the order is known."""
BYTE_ORDER_MAGIC = 0x1A2B3C4D
SHB_BODY = Table("pcapng Section Header Block", ("byte_order", "I"), ("major", "H"), ("minor", "H"), ("length", "q"))
IDB_TYPE = 1
IDB_BODY = Table("pcapng Interface Description Block", ("linktype", "H"), ("reserved", "H"), ("snaplen", "I"))
_STAMPED = (("ts_high", "I"), ("ts_low", "I"), ("caplen", "I"), ("orig_len", "I"))
"""What an Enhanced Packet Block (section 4.3) and the obsolete Packet Block (appendix A) both carry after
the interface: the timestamp's two words and the captured and original lengths."""
EPB_TYPE = 6
EPB_BODY = Table("pcapng Enhanced Packet Block", ("interface", "I"), *_STAMPED)
SPB_TYPE = 3
SPB_BODY = Table("pcapng Simple Packet Block", ("orig_len", "I"))
PB_TYPE = 2
PB_BODY = Table("pcapng Packet Block (obsolete)", ("interface", "H"), ("drops", "H"), *_STAMPED)
OPTION = Table("pcapng option", ("code", "H"), ("length", "H"))
OPT_ENDOFOPT = 0
IF_TSRESOL = 9
"""Section 4.2: one byte; high bit clear: units of 10**-value s; set: units of 2**-(value & 0x7F) s."""
IF_TSOFFSET = 14
"""Section 4.2: a signed 64-bit number of seconds added to every timestamp of the interface."""
DEFAULT_TSRESOL = 6
"""Microseconds, when an interface has no if_tsresol option."""

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class _Interface:
    """What an IDB says about the frames of one interface (``link``: the refusal, when unsupported)."""

    link: LinkType | str
    snaplen: int
    tsresol: int
    tsoffset_s: int

    def time_ns(self, units: int) -> int:
        """A timestamp in this interface's units as ns since the epoch (integer arithmetic, no rounding drift)."""
        if self.tsresol & 0x80:
            ns = (units * _NS_PER_S) >> (self.tsresol & 0x7F)
        else:
            exponent = self.tsresol
            ns = units * 10 ** (9 - exponent) if exponent <= 9 else units // 10 ** (exponent - 9)
        return ns + self.tsoffset_s * _NS_PER_S


def _unsupported(code: int, where: str) -> str:
    """The one line that refuses link type ``code``, naming it and what is supported."""
    name = OTHER_LINK_TYPES.get(code, "unknown")
    supported = ", ".join(f"{t.name} ({t.value})" for t in LinkType)
    return f"{where} has link type {code} ({name}); supported: {supported}"


class _Stream:
    """The file being read, with the byte offset of every read (for the truncation message)."""

    def __init__(self, handle: BinaryIO, path: str) -> None:
        self.handle = handle
        self.path = path
        self.offset = 0
        self.frames = 0

    def read(self, size: int) -> bytes | None:
        """The next record's first ``size`` bytes, or None at a clean end of file (between records);
        CaptureError when the file ends inside them."""
        start = self.offset
        data = self.handle.read(size)
        if len(data) == size:
            self.offset += size
            return data
        if not data:
            return None
        self.truncated(start)

    def need(self, size: int, start: int) -> bytes:
        """Exactly ``size`` bytes of a record begun at ``start``; CaptureError if the file ends first."""
        data = self.handle.read(size)
        if len(data) < size:
            self.truncated(start)
        self.offset += size
        return data

    def truncated(self, start: int) -> NoReturn:
        """CaptureError for a record begun at byte ``start`` that the file cuts short."""
        raise CaptureError(
            f"capture {self.path!r} is truncated at frame {self.frames}, byte offset {start} "
            f"(the {self.frames} frames before it are whole)"
        )

    def corrupt(self, start: int, what: str) -> NoReturn:
        """CaptureError for a record header that cannot be right."""
        raise CaptureError(f"capture {self.path!r} is corrupt at frame {self.frames}, byte offset {start}: {what}")


def read_capture(path: str | os.PathLike[str]) -> Iterator[Record]:
    """Every frame of the pcap or pcapng file at ``path``, one at a time, in file order.

    Raises CaptureError (one line) when the file is not a capture, is empty or holds no frames, uses an
    unsupported link type, or is cut short. What the start of the file shows (not a capture, empty,
    a classic pcap's link type) is raised here, before any frame is asked for; the rest as the
    frames are read, a truncation after the frames before the cut.
    """
    path = os.fspath(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - the returned generator owns it and closes it
    except OSError as exc:
        raise CaptureError(f"capture {path!r} cannot be read: {exc.strerror}") from None
    try:
        stream = _Stream(handle, path)
        frames = _frames(stream)
    except BaseException:
        handle.close()
        raise
    return _records(stream, frames)


def _records(stream: _Stream, frames: Iterator[Record]) -> Iterator[Record]:
    """``frames``, then the file closed; CaptureError if there were none."""
    with stream.handle:
        yield from frames
        if stream.frames == 0:
            raise CaptureError(f"capture {stream.path!r} holds no frames")


def _frames(stream: _Stream) -> Iterator[Record]:
    """The records of the file, by its magic number (its file header checked now for classic pcap)."""
    head = stream.handle.read(4)
    if not head:
        raise CaptureError(f"capture {stream.path!r} is empty (0 bytes)")
    if len(head) < 4:
        raise CaptureError(f"capture {stream.path!r} is not a pcap or pcapng file ({len(head)} bytes)")
    stream.offset = 4
    big = struct.unpack(">I", head)[0]
    if big == SHB_TYPE:
        return _pcapng(stream, head)
    classic = pcap_magic(head)
    if classic is not None:
        order, magic = classic
        return _pcap(stream, _pcap_header(stream, head, order), order, magic)
    raise CaptureError(f"capture {stream.path!r} is not a pcap or pcapng file (it starts with 0x{big:08x})")


def pcap_magic(head: bytes) -> tuple[str, int] | None:
    """A classic pcap's byte order (``">"`` or ``"<"``) and magic (µs or ns) from its first four
    bytes (section 4); None when they are no classic pcap magic."""
    for order in "><":
        magic = struct.unpack(order + "I", head)[0]
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            return order, magic
    return None


def _pcap_header(stream: _Stream, magic: bytes, order: str) -> LinkType:
    """The link type of a classic pcap, from its file header (section 4)."""
    header = PCAP_HEADER.unpack(order, magic + stream.need(PCAP_HEADER.size - len(magic), 0))
    if header["major"] != 2:
        stream.corrupt(0, f"pcap version {header['major']}.{header['minor']} (readers know 2.x)")
    code = header["linktype"] & _LINKTYPE_MASK
    if code not in _LINK_TYPES:
        raise CaptureError(_unsupported(code, f"capture {stream.path!r}"))
    return LinkType(code)


def _pcap(stream: _Stream, link: LinkType, order: str, magic: int) -> Iterator[Record]:
    to_ns = 1 if magic == PCAP_MAGIC_NS else 1000
    unpack = PCAP_RECORD.structs[order].unpack
    while True:
        start = stream.offset
        raw = stream.read(PCAP_RECORD.size)
        if raw is None:
            return
        seconds, fraction, caplen, orig_len = unpack(raw)
        if caplen > MAX_FRAME:
            stream.corrupt(start, f"a frame of {caplen} bytes (at most {MAX_FRAME})")
        data = stream.need(caplen, start)
        yield Record(stream.frames, seconds * _NS_PER_S + fraction * to_ns, link, data, orig_len)
        stream.frames += 1


def _pcapng(stream: _Stream, head: bytes) -> Iterator[Record]:
    order = "<"
    interfaces: list[_Interface] = []
    start = 0
    raw = head + stream.need(BLOCK_HEADER.size - len(head), start)
    while True:  # ``raw``: the type and length of the block at ``start``
        if raw[:4] == _SHB:
            # A new section: its byte-order magic (after the length) sets the order of the length and
            # of every block up to the next SHB, and its interfaces start from none (section 4.1).
            magic = stream.need(4, start)
            if magic not in _ORDERS:
                stream.corrupt(start, f"section header byte-order magic 0x{magic.hex()}")
            order = _ORDERS[magic]
            body = magic + _body(stream, start, order, raw[4:], BLOCK_HEADER.size + len(magic))
            section = SHB_BODY.unpack(order, body)
            if section["major"] != 1:
                stream.corrupt(start, f"pcapng version {section['major']}.{section['minor']} (readers know 1.x)")
            interfaces = []
        else:
            block_type = struct.unpack(order + "I", raw[:4])[0]
            body = _body(stream, start, order, raw[4:], BLOCK_HEADER.size)
            if block_type == IDB_TYPE:
                interfaces.append(_interface(stream, order, body, len(interfaces)))
            elif block_type in _PACKET_BLOCKS:
                yield _packet(stream, start, order, block_type, body, interfaces)
                stream.frames += 1
        start = stream.offset
        next_raw = stream.read(BLOCK_HEADER.size)
        if next_raw is None:
            return
        raw = next_raw


_SHB = SHB_TYPE.to_bytes(4, "big")
_ORDERS = {BYTE_ORDER_MAGIC.to_bytes(4, "little"): "<", BYTE_ORDER_MAGIC.to_bytes(4, "big"): ">"}
_PACKET_BLOCKS = {EPB_TYPE: EPB_BODY, SPB_TYPE: SPB_BODY, PB_TYPE: PB_BODY}


def _body(stream: _Stream, start: int, order: str, raw_length: bytes, taken: int) -> bytes:
    """The rest of a block whose ``taken`` first bytes are read: its body, the trailing length checked and dropped."""
    length = struct.unpack(order + "I", raw_length)[0]
    if length % 4 or not taken + BLOCK_TRAILER_LEN <= length <= MAX_BLOCK:
        stream.corrupt(start, f"a block length of {length} (allowed: a multiple of 4, {taken + 4}-{MAX_BLOCK})")
    rest = stream.need(length - taken, start)
    if rest[-BLOCK_TRAILER_LEN:] != raw_length:
        stream.corrupt(start, "the block's trailing length differs from its leading one")
    return rest[:-BLOCK_TRAILER_LEN]


def _options(order: str, body: bytes, offset: int) -> dict[int, bytes]:
    """The options from ``offset`` of a block body (section 3.5: code, length, value padded to 32 bits)."""
    found: dict[int, bytes] = {}
    while offset + OPTION.size <= len(body):
        option = OPTION.unpack(order, body, offset)
        if option["code"] == OPT_ENDOFOPT:
            break
        offset += OPTION.size
        found[option["code"]] = body[offset : offset + option["length"]]
        offset += -(-option["length"] // 4) * 4
    return found


def _interface(stream: _Stream, order: str, body: bytes, number: int) -> _Interface:
    idb = IDB_BODY.unpack(order, body)
    options = _options(order, body, IDB_BODY.size)
    tsresol = options.get(IF_TSRESOL, bytes([DEFAULT_TSRESOL]))
    tsoffset = options.get(IF_TSOFFSET)
    try:
        link: LinkType | str = LinkType(idb["linktype"])
    except ValueError:  # refused only if a frame of this interface comes (a capture may describe unused ones)
        link = _unsupported(idb["linktype"], f"capture {stream.path!r} interface {number}")
    return _Interface(
        link,
        idb["snaplen"],
        tsresol[0] if tsresol else DEFAULT_TSRESOL,
        struct.unpack(order + "q", tsoffset)[0] if tsoffset is not None and len(tsoffset) == 8 else 0,
    )


def _packet(
    stream: _Stream, start: int, order: str, block_type: int, body: bytes, interfaces: list[_Interface]
) -> Record:
    """The Record in an EPB, SPB or PB (sections 4.3, 4.4 and the appendix's Packet Block)."""
    table = _PACKET_BLOCKS[block_type]
    if len(body) < table.size:
        stream.corrupt(start, f"a {table.name} of {len(body)} bytes")
    values = table.structs[order].unpack_from(body)
    if block_type == SPB_TYPE:
        interface, units, orig_len = 0, None, values[0]
    else:  # the EPB and the PB end in the same four fields
        interface, (high, low, caplen, orig_len) = values[0], values[-4:]
        units = high << 32 | low
    if interface >= len(interfaces):
        stream.corrupt(start, f"a frame of interface {interface} with {len(interfaces)} interfaces described")
    described = interfaces[interface]
    room = len(body) - table.size
    if block_type == SPB_TYPE:  # no captured length: the frame, cut to the snapshot length (4.4)
        caplen = min(orig_len, described.snaplen or room, room)
    elif caplen > room:
        stream.corrupt(start, f"a frame of {caplen} bytes in a block with room for {room}")
    if isinstance(described.link, str):
        raise CaptureError(described.link)
    time_ns = 0 if units is None else described.time_ns(units)
    return Record(stream.frames, time_ns, described.link, body[table.size : table.size + caplen], orig_len)
