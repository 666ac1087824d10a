"""A capture read in chunks, and the rewrite's fast lane over them (``_lane.c``, optional).

``read_chunks(path)`` yields ``RecordChunk``s: up to ``count`` records in one buffer with their
offsets, captured and original lengths, times, link types and frame numbers as int64 arrays. A
classic pcap is parsed in C (``_lane.pcap_records``) from reads of ``READ_BYTES``; pcapng, and any
file when the extension is not built, goes through ``capture.read_capture`` and is packed into the
same form (``pack_records``), so what follows is one path. Errors are capture.py's, word for word.

``lane_for(rewriter, mtu)`` is the C twin of ``Rewriter`` for the common frame (see ``_lane.c``),
sharing the Rewriter's one flow table (it asks ``Rewriter.flow`` for each destination it has not
met); None when the extension is not built.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rawpacer.errors import CaptureError
from rawpacer.traffic.capture import (
    MAX_FRAME,
    PCAP_HEADER,
    PCAP_MAGIC_NS,
    PCAP_RECORD,
    LinkType,
    Record,
    _pcap_header,
    _Stream,
    pcap_magic,
    read_capture,
)
from rawpacer.traffic.rewrite import Rewriter

if TYPE_CHECKING:
    from rawpacer.traffic._lane import Lane

try:
    from rawpacer.traffic import _lane
except ImportError:  # built without a compiler: every frame takes the Python path
    BUILT = False
else:
    BUILT = True

CHUNK = 1024
"""Records in a chunk unless asked otherwise."""
READ_BYTES = 1 << 18
"""What one read of a classic pcap takes at least (the records it holds whole are parsed, the rest kept
for the next; a chunk not yet whole reads as much again as it holds)."""


@dataclass
class RecordChunk:
    """Consecutive records of one pass over a capture: record i's bytes are
    ``data[offsets[i] : offsets[i] + caplens[i]]``; the arrays are int64."""

    data: bytes | bytearray | memoryview
    offsets: np.ndarray
    caplens: np.ndarray
    origlens: np.ndarray
    times: np.ndarray
    links: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets)

    def record(self, i: int) -> Record:
        """Record i as ``read_capture`` yields it."""
        at, length = int(self.offsets[i]), int(self.caplens[i])
        return Record(
            int(self.indices[i]),
            int(self.times[i]),
            LinkType(int(self.links[i])),
            bytes(self.data[at : at + length]),
            int(self.origlens[i]),
        )

    def head(self, count: int) -> RecordChunk:
        """The first ``count`` records."""
        cut = (a[:count] for a in (self.offsets, self.caplens, self.origlens, self.times, self.links, self.indices))
        return RecordChunk(self.data, *cut)


def pack_records(records: Iterable[Record], count: int = CHUNK) -> Iterator[RecordChunk]:
    """``records`` (a pcapng file's, or frames from Python) packed ``count`` at a time."""
    it = iter(records)
    while batch := list(itertools.islice(it, count)):
        lengths = np.fromiter((len(r.data) for r in batch), np.int64, len(batch))
        offsets = np.zeros(len(batch), np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        yield RecordChunk(
            b"".join(r.data for r in batch),
            offsets,
            lengths,
            np.fromiter((r.orig_len for r in batch), np.int64, len(batch)),
            np.fromiter((r.time_ns for r in batch), np.int64, len(batch)),
            np.fromiter((int(r.link) for r in batch), np.int64, len(batch)),
            np.fromiter((r.index for r in batch), np.int64, len(batch)),
        )


def read_chunks(path: str | os.PathLike[str], count: int = CHUNK) -> Iterator[RecordChunk]:
    """Every record of the capture at ``path`` in chunks of up to ``count``: classic pcap parsed in C,
    anything else as ``read_capture`` reads it. CaptureError (capture.py's one line) as it reads."""
    path = os.fspath(path)
    if not BUILT:
        return pack_records(read_capture(path), count)
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return pack_records(read_capture(path), count)  # its error, word for word
    classic = pcap_magic(head) if len(head) == 4 else None
    if classic is None:
        return pack_records(read_capture(path), count)
    order, magic = classic
    handle = open(path, "rb")  # noqa: SIM115 - the returned generator owns it and closes it
    try:
        stream = _Stream(handle, path)
        stream.offset = 4
        link = _pcap_header(stream, handle.read(4), order)
    except BaseException:
        handle.close()
        raise
    return _pcap_chunks(stream, handle, link, order == ">", magic == PCAP_MAGIC_NS, count)


def _pcap_chunks(
    stream: _Stream, handle: io.BufferedReader, link: LinkType, big: bool, nanos: bool, count: int
) -> Iterator[RecordChunk]:
    """A classic pcap's records (after its file header, ``handle`` at the first), parsed by ``_lane.pcap_records``."""
    assert PCAP_RECORD.size == 16 and stream.offset == PCAP_HEADER.size
    with stream.handle:
        data: bytes | memoryview = b""
        want = READ_BYTES
        at = 0  # where in ``data`` the next record starts; data[0] is file byte ``base``
        base = stream.offset
        ended = False
        while True:
            offsets, caplens, origlens, times = (np.empty(count, np.int64) for _ in range(4))
            got, stop, bad = _lane.pcap_records(data, at, big, nanos, offsets, caplens, origlens, times)
            if got < count and bad < 0 and not ended:  # a whole chunk first: read on (at least doubling)
                left = len(data) - at
                # Not zeroed (np.empty, not bytearray): the read fills it, and a chunk's buffer is
                # megabytes that clearing would cost a pass each (a replay at top speed plans beside the send).
                grown = np.empty(left + max(want, MAX_FRAME + PCAP_RECORD.size, left), np.uint8)
                view = grown.data
                view[:left] = memoryview(data)[at:]
                read = handle.readinto(view[left:])
                ended = read == 0
                base += at
                data, at = view[: left + read], 0
                continue
            if got:
                want = max(want, stop - at)  # what a chunk takes: one read each from now on
                yield RecordChunk(
                    data,
                    offsets[:got],
                    caplens[:got],
                    origlens[:got],
                    times[:got],
                    np.full(got, int(link), np.int64),
                    np.arange(stream.frames, stream.frames + got, dtype=np.int64),
                )
                stream.frames += got
                at = stop
                continue
            if bad >= 0:
                stream.corrupt(base + stop, f"a frame of {bad} bytes (at most {MAX_FRAME})")
            if stop < len(data):
                stream.truncated(base + stop)
            if stream.frames == 0:
                raise CaptureError(f"capture {stream.path!r} holds no frames")
            return


def lane_for(rewriter: Rewriter, mtu: int) -> Lane | None:
    """The C fast lane onto ``rewriter``'s sandbox and flow table, for a link of ``mtu``; None when not built."""
    if not BUILT:
        return None
    sandbox = rewriter.sandbox
    pairs = {v: b"".join(sandbox.addresses[v]) if v in sandbox.addresses else None for v in (4, 6)}
    vlan = -1 if sandbox.vlan is None else sandbox.vlan
    return _lane.Lane(sandbox.reader_mac, sandbox.writer_mac, pairs[4], pairs[6], vlan, mtu, rewriter.flow)


class CaptureFile:
    """A capture file as a replay's source, opened afresh for each pass: called, its records
    (``read_capture``); ``chunks(count)``, its chunks (``read_chunks``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path

    def __call__(self) -> Iterator[Record]:
        return read_capture(self.path)

    def chunks(self, count: int = CHUNK) -> Iterator[RecordChunk]:
        """One pass in chunks of ``count`` records."""
        return read_chunks(self.path, count)
