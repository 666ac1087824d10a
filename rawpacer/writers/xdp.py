"""``xdp``: frames stamped straight into an AF_XDP socket's UMEM, one descriptor batch and one kick per span."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rawpacer.errors import Unavailable, require
from rawpacer.headers.checksum import BytesLike
from rawpacer.headers.sequence import stamp_sequence
from rawpacer.kernel.afxdp import (
    COPY_MAX_DESCS,
    MODES,
    PAGE,
    TX_BATCH_SIZE,
    XdpSocket,
    check_chunk_size,
    check_ring,
    chunks_for,
    features,
    frame_descriptors,
    next_power_of_two,
)
from rawpacer.target import Target
from rawpacer.writers._batch import Batch, Batches
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import Fit, Knobs, Message, WriterOptions, check_count, register

DEFAULT_CHUNKS = 512
"""UMEM chunks when the knob is 0 and one fan-out needs fewer."""
MAX_UMEM_BYTES = 64 << 20
"""Largest UMEM the writer pins (the same cap as packet-ring's TX ring)."""


@dataclass(frozen=True)
class XdpKnobs(Knobs):
    """The xdp writer's own settings.

    ``queue``: the interface queue to bind (lo and veth have queue 0). ``chunk_size``: bytes per UMEM
    chunk (2048 up to the page size). ``chunks``: UMEM chunks (0: one fan-out's descriptors, at
    least 512, at most 64 MiB of UMEM). ``tx_ring`` / ``completion_ring``: entries, powers of two (0:
    the chunk count rounded up to one). ``mode``: ``auto`` (zero-copy where the driver has it, else
    copy), ``copy`` or ``zerocopy``. ``need_wakeup``: bind with XDP_USE_NEED_WAKEUP and kick only
    when the kernel asks. ``multi_buffer``: frames longer than a chunk as multi-buffer packets
    (None: where the kernel has XDP_USE_SG; False: one chunk per frame, as on a kernel without it).
    ``tx_budget``: descriptors one kick may transmit (XDP_MAX_TX_SKB_BUDGET; 0: the whole TX ring
    where the kernel has the option; 32, the kernel's default, means re-kicking every 32).
    """

    queue: int = 0
    chunk_size: int = min(4096, PAGE)
    chunks: int = 0
    tx_ring: int = 0
    completion_ring: int = 0
    mode: str = "auto"
    need_wakeup: bool = True
    multi_buffer: bool | None = None
    tx_budget: int = 0

    def __post_init__(self) -> None:
        """Each knob checked where knobs are made, naming the value and what is allowed."""
        check_count("queue", self.queue)
        check_chunk_size(self.chunk_size)
        check_count("chunks", self.chunks)
        for name in ("tx_ring", "completion_ring"):
            if check_count(name, getattr(self, name)):
                check_ring(name, getattr(self, name))
        require(self.mode in MODES, f"xdp mode {self.mode!r} is not allowed; use one of: {', '.join(MODES)}")
        require(
            isinstance(self.need_wakeup, bool), f"need_wakeup {self.need_wakeup!r} is not allowed; use True or False"
        )
        require(
            self.multi_buffer in (None, True, False),
            f"multi_buffer {self.multi_buffer!r} is not allowed; use None (automatic), True or False",
        )
        budget = check_count("tx_budget", self.tx_budget)
        require(
            budget == 0 or budget >= TX_BATCH_SIZE,
            f"tx_budget {budget} is not allowed; use 0 (automatic) or {TX_BATCH_SIZE} and more",
        )


@dataclass(frozen=True)
class _Layout:
    """Equal-length frames in UMEM rows: a row is ``per_frame`` consecutive chunks holding one frame."""

    frame_len: int
    per_frame: int
    rows: np.ndarray
    """The UMEM as rows of ``per_frame * chunk_size`` bytes."""
    descs: np.ndarray
    """Every row's descriptors; row r's are ``descs[r * per_frame : (r + 1) * per_frame]``."""
    resident: bool
    """Every port has a row of its own, so its frame stays there from one send to the next."""


@register
class XdpWriter(RawWriter):
    """AF_XDP, TX only: a UMEM, its completion ring and a TX ring mapped from one socket.

    Equal-length fan-outs are stamped a run of UMEM rows at a time (headers and checksums as
    arrays, like packet-ring); when every port has a row of its own, a frame stays in its row and a
    replay (``resend``) only publishes descriptors again. Mixed lengths and fragments go frame by
    frame into chunks taken in turn. A span's descriptors go into the TX ring in one batch and one
    kick sends them (or one per ``tx_budget``); a chunk is rewritten only after its completion, and
    a span larger than the UMEM or the ring waits for completions as it goes.
    """

    name = "xdp"
    order = 13
    summary = "AF_XDP socket (TX only): frames stamped into UMEM chunks, one descriptor batch and kick per fan-out"
    knobs_type = XdpKnobs

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        assert isinstance(self.knobs, XdpKnobs)
        knobs = self.knobs
        per_frame = chunks_for(self.max_frame, knobs.chunk_size)
        wanted = len(target.ports) * self.frames_per_message * per_frame
        chunks = knobs.chunks or min(max(DEFAULT_CHUNKS, wanted), MAX_UMEM_BYTES // knobs.chunk_size)
        require(
            per_frame <= chunks and chunks * knobs.chunk_size <= MAX_UMEM_BYTES,
            f"xdp chunks {chunks} is not allowed: a {self.max_frame}-byte frame takes {per_frame} chunks of "
            f"{knobs.chunk_size} bytes; use {per_frame} to {MAX_UMEM_BYTES // knobs.chunk_size}",
        )
        rings = {
            "tx_ring": knobs.tx_ring or next_power_of_two(chunks),
            "completion_ring": knobs.completion_ring or next_power_of_two(chunks),
        }
        for name, entries in rings.items():
            require(
                entries >= per_frame,
                f"xdp {name} {entries} is not allowed: one {self.max_frame}-byte frame takes {per_frame} "
                f"descriptors; use a power of two of at least {per_frame}",
            )
        with self.opening():
            self.xsk = XdpSocket(
                target.link.ifname,
                target.link.ifindex,
                chunks=chunks,
                chunk_size=knobs.chunk_size,
                queue=knobs.queue,
                mode=knobs.mode,
                need_wakeup=knobs.need_wakeup,
                multi_buffer=self.multi_buffer,
                tx_budget=knobs.tx_budget,
                **rings,
            )
            self.own(self.xsk.close)
            self.own(self._drop_views)
        self.mode = self.xsk.mode
        """``copy`` or ``zerocopy``: how the kernel ran this socket (lo and veth only have copy)."""
        self.tx_budget = self.xsk.tx_budget
        self._batches = Batches(self.templates)
        self._layout: _Layout | None = None
        self._composed = np.zeros(len(target.ports), bool)
        """Ports whose current message's frame sits in their resident row, ready to replay."""
        self._cursor = 0
        """The next chunk to write when chunks are taken in turn."""
        self._sequence: int | None = None
        """A stream's current sequence, written into resident rows as a replay claims them."""

    def frame_limit(self) -> tuple[int, str]:
        """One chunk, or COPY_MAX_DESCS chunks with multi-buffer (decided here, before the fit plan)."""
        assert isinstance(self.knobs, XdpKnobs)
        wanted, size = self.knobs.multi_buffer, self.knobs.chunk_size
        have = features()
        if not have.sockets:
            raise Unavailable(f"xdp unavailable: {have.reason}")
        if wanted and not have.multi_buffer:
            raise Unavailable(
                "xdp: this kernel has no AF_XDP multi-buffer (bind flag XDP_USE_SG, Linux 6.6+); "
                "use multi_buffer None or False"
            )
        self.multi_buffer = have.multi_buffer if wanted is None else wanted
        """Frames longer than a chunk go out as multi-buffer packets (XDP_USE_SG, XDP_PKT_CONTD)."""
        if self.multi_buffer:
            return COPY_MAX_DESCS * size, f"xdp sends a frame in at most {COPY_MAX_DESCS} UMEM chunks of {size} bytes"
        why = "multi_buffer is off" if wanted is False else "this kernel has no XDP_USE_SG, Linux 6.6+"
        return size, f"xdp sends a frame in one {size}-byte UMEM chunk without multi-buffer ({why})"

    # --- sending ---------------------------------------------------------------------------

    def restamp(self, sequence: int) -> None:
        """Keep the new sequence: a replay writes it into each resident row once the row's last
        transmission has completed (``_send_rows``), never under a frame still in flight."""
        self._sequence = sequence

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """The span's frames into the UMEM (or, replaying, left where they are), its descriptors into
        the TX ring, kicks until the kernel took them all. Frames the driver dropped are not counted."""
        xsk = self.xsk
        dropped = xsk.dropped
        if replay and self._composed[start:stop].all():
            self._send_rows(None, messages, start, stop)
        else:
            size = len(messages[start])
            uniform = all(len(messages[i]) == size for i in range(start, stop))
            if uniform and not (self.fit is Fit.FRAGMENT and size > self.limit):
                self._send_rows(self._batches[min(size, self.limit)], messages, start, stop)
            else:
                self._composed[:] = False
                self._send_each(messages, start, stop)
            self._sequence = None  # fresh frames: the messages carry their sequence themselves
        xsk.flush()
        return max(0, stop - start - (xsk.dropped - dropped))

    def send_frames(self, frames: Sequence[Message]) -> int:
        """Each prebuilt frame copied into UMEM chunks taken in turn, queued, one kick for them all.
        Frames the driver dropped are not counted."""
        self.check_frames(frames)
        xsk, umem = self.xsk, self.xsk.view
        dropped = xsk.dropped
        for frame in frames:
            offset = self._claim_frame(len(frame))
            umem[offset : offset + len(frame)] = frame
            xsk.queue(offset, len(frame))
            self.record(frame)
        self._composed[:] = False
        xsk.flush()
        return max(0, len(frames) - (xsk.dropped - dropped))

    def _layout_for(self, frame_len: int) -> _Layout:
        """The rows for ``frame_len``-byte frames (made when the length changes)."""
        layout = self._layout
        if layout is None or layout.frame_len != frame_len:
            xsk = self.xsk
            per_frame = chunks_for(frame_len, xsk.chunk_size)
            count = xsk.chunk_count // per_frame
            rows = xsk.frames[: count * per_frame * xsk.chunk_size].reshape(count, -1)
            descs = frame_descriptors(0, count, frame_len, xsk.chunk_size)
            layout = self._layout = _Layout(frame_len, per_frame, rows, descs, len(self.target.ports) <= count)
            self._composed[:] = False
        return layout

    def _send_rows(self, batch: Batch | None, messages: Sequence[BytesLike], start: int, stop: int) -> None:
        """Messages ``start .. stop-1``, all one length, a row each: stamped by ``batch`` (None: the rows
        already hold them) and published a run of free rows at a time."""
        layout = self._layout_for(batch.frame_len) if batch is not None else self._layout
        assert layout is not None
        xsk, per_frame, total = self.xsk, layout.per_frame, len(layout.rows)
        index = start
        while index < stop:
            if layout.resident:
                row, want = index, stop - index
            else:
                row = -(-self._cursor // per_frame) % total
                want = min(stop - index, total - row)
            run = xsk.claim(row * per_frame, want * per_frame, per_frame) // per_frame
            rows = layout.rows[row : row + run]
            if batch is not None:
                batch.compose(rows, messages, index, index + run)
                self._composed[index : index + run] = layout.resident
            elif self._sequence is not None:
                stamp_sequence(rows, rows.shape[1], self.templates[0].header_len, self._sequence)
            xsk.publish(layout.descs[row * per_frame : (row + run) * per_frame], row * per_frame)
            if self.pcap is not None:
                for frame in rows:
                    self.pcap.record(frame[: layout.frame_len])
            self._cursor = (row + run) * per_frame
            index += run

    def _send_each(self, messages: Sequence[BytesLike], start: int, stop: int) -> None:
        """Frame by frame: a template stamped into its chunks, fragments copied in one by one."""
        xsk, umem = self.xsk, self.xsk.view
        for index in range(start, stop):
            message = messages[index]
            if self.fit is Fit.FRAGMENT and not self.fits(message):
                for frame in self.frames_for(index, message):
                    offset = self._claim_frame(len(frame))
                    umem[offset : offset + len(frame)] = frame
                    xsk.queue(offset, len(frame))
                    self.record(frame)
                continue
            payload, template = self.fitted(message), self.templates[index]
            offset = self._claim_frame(template.header_len + len(payload))
            length = template.stamp_into(umem, offset, payload)
            xsk.queue(offset, length)
            self.record(umem[offset : offset + length])

    def _claim_frame(self, length: int) -> int:
        """UMEM offset of the next run of chunks that holds ``length`` bytes, taken in turn (wrapping
        to the start), once the kernel has completed them."""
        xsk = self.xsk
        count = chunks_for(length, xsk.chunk_size)
        first = self._cursor if self._cursor + count <= xsk.chunk_count else 0
        xsk.claim(first, count, count)
        self._cursor = first + count
        return first * xsk.chunk_size

    # --- reporting and life cycle -------------------------------------------------------

    def statistics(self) -> dict[str, int]:
        """The socket's XDP_STATISTICS (rx_dropped, rx_invalid_descs, tx_invalid_descs, rx_ring_full,
        rx_fill_ring_empty_descs, tx_ring_empty_descs), plus ``dropped`` (frames the driver dropped:
        sendto EBUSY) and ``kicks`` (sendto calls)."""
        return {**self.xsk.statistics(), "dropped": self.xsk.dropped, "kicks": self.xsk.kicks}

    def facts(self) -> dict[str, object]:
        """Which AF_XDP mode ran (``xdp_mode``: copy or zerocopy), and whether frames span descriptors."""
        return {"xdp_mode": self.mode, "xdp_multi_buffer": self.multi_buffer}

    def notes(self) -> list[str]:
        """The AF_XDP mode that ran, for the table (copy on lo and veth; zerocopy where the driver has it)."""
        return [f"AF_XDP {self.mode} mode"]

    def problems(self) -> list[str]:
        """One sentence per counter that means frames were lost (empty when none): invalid
        descriptors and frames the driver dropped. tx_ring_empty_descs is not one: the copy path
        counts one each time a kick empties the TX ring, once per span."""
        stats, found = self.statistics(), []
        if stats["tx_invalid_descs"]:
            found.append(f"xdp: {stats['tx_invalid_descs']} TX descriptor(s) refused as invalid (tx_invalid_descs)")
        if stats["dropped"]:
            found.append(f"xdp: {stats['dropped']} frame(s) dropped by the driver after the kernel took them (EBUSY)")
        return found

    def _drop_views(self) -> None:
        """Forget the arrays that view the UMEM, so the socket can unmap it."""
        self._layout = None
