"""``packet-ring``: frames stamped straight into a PACKET_MMAP TX ring, one send() per fan-out."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rawpacer.headers.checksum import BytesLike
from rawpacer.headers.sequence import stamp_sequence
from rawpacer.kernel.tpacket import DATA_OFFSET, TxRing, fanout_frames
from rawpacer.target import Target
from rawpacer.writers._batch import Batches
from rawpacer.writers._packet_socket import open_packet_socket
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import Fit, Knobs, Message, WriterOptions, check_count, register


@dataclass(frozen=True)
class RingKnobs(Knobs):
    """``frames``: ring slots (0: one fan-out's frames, at least 512); ``qdisc_bypass``: hand frames
    to the driver without the qdisc (PACKET_QDISC_BYPASS, on by default)."""

    frames: int = 0
    qdisc_bypass: bool = True

    def __post_init__(self) -> None:
        """The slot count is 0 (automatic) or positive."""
        check_count("ring frames", self.frames)


@register
class PacketRingWriter(RawWriter):
    """TPACKET_V2 TX ring: each frame written into its ring slot, the span flushed at once.

    A full ring is flushed and waited on, never overwritten. Fan-outs of equal-length messages
    that need no fragmenting are stamped a run of slots at a time (headers, checksums and payloads
    as whole arrays); others frame by frame.
    """

    name = "packet-ring"
    order = 11
    summary = "AF_PACKET PACKET_MMAP TX ring (TPACKET_V2), one send() flushes the fan-out"
    knobs_type = RingKnobs

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        assert isinstance(self.knobs, RingKnobs)
        with self.opening():
            self.sock = open_packet_socket(target.link.ifname)
            self.own(self.sock.close)
            wanted = len(target.ports) * self.frames_per_message
            frames = self.knobs.frames or fanout_frames(self.max_frame, wanted)
            self.ring = TxRing(self.sock, self.max_frame, frames, qdisc_bypass=self.knobs.qdisc_bypass)
            self.own(self.ring.close)
        self._batches = Batches(self.templates)
        self._frames = np.empty((0, 0), np.uint8)
        """The last fan-out's frames, one per row; reused from op to op (no per-op allocation)."""
        self._composed = np.zeros(0, bool)
        """Which rows of ``_frames`` hold the current messages' frames (replayable as they are)."""
        self._whole = False
        """All of them do: a whole fan-out's replay needs no further check."""
        self._row_len = 0
        """Bytes in a row of ``_frames`` (0: none yet), kept as an int so ``restamp`` makes no object."""

    def stamping_socket(self) -> socket.socket | None:
        """The ring's AF_PACKET socket: one send per frame, in order."""
        return self.unless_fragmenting(self.sock)

    def restamp(self, sequence: int) -> None:
        """The new sequence into the kept frames' payloads, every row in one call (``_put`` copies
        them into the ring, so frames already handed over keep theirs)."""
        if self._row_len:  # rows not composed yet are rebuilt before they are sent: stamping them is harmless
            stamp_sequence(self._frames, self._row_len, self.templates[0].header_len, sequence)

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """Frames for the span stamped (or, replaying, copied) into the ring; one ``send`` flushes them."""
        if replay and (self._whole if stop - start == len(messages) else self._composed[start:stop].all()):
            self._put(self._frames[start:stop])  # a stream's replay: the frames are there already
        elif len(set(map(len, messages[start:stop]))) != 1 or (
            self.fit is Fit.FRAGMENT and len(messages[start]) > self.limit
        ):
            self._composed[:] = self._whole = False
            self._send_each(messages, start, stop)
        else:
            self._compose(messages, len(messages[start]), start, stop)
            self._put(self._frames[start:stop])
        self.ring.flush()
        return stop - start

    def frame_room(self) -> int:
        """A ring slot's room, when that is less than the link takes."""
        return min(super().frame_room(), self.ring.max_frame)

    def send_frames(self, frames: Sequence[Message]) -> int:
        """Each prebuilt frame copied into its slot; one ``send`` flushes them."""
        self.check_frames(frames)
        ring = self.ring
        for frame in frames:
            offset = ring.claim()
            ring.map[offset : offset + len(frame)] = frame
            ring.commit(len(frame))
            self.record(frame)
        ring.flush()
        return len(frames)

    def _compose(self, messages: Sequence[BytesLike], size: int, start: int, stop: int) -> None:
        """Messages ``start .. stop-1``, all ``size`` bytes long: their frames as rows of ``_frames``
        (headers and checksums as arrays)."""
        count = len(messages)
        batch = self._batches[min(size, self.limit)]
        if self._frames.shape != (count, batch.frame_len):
            self._frames = np.empty((count, batch.frame_len), np.uint8)
            self._composed = np.zeros(count, bool)
            self._row_len = batch.frame_len
        batch.compose(self._frames[start:stop], messages, start, stop)
        self._composed[start:stop] = True
        self._whole = bool(self._composed.all())

    def _put(self, frames: np.ndarray) -> None:
        """Copy the frames into runs of consecutive free slots and hand them to the kernel."""
        ring, (count, frame_len) = self.ring, frames.shape
        done = 0
        while done < count:
            first, run = ring.reserve(count - done)
            rows = ring.rows[first : first + run]
            rows[:, DATA_OFFSET : DATA_OFFSET + frame_len] = frames[done : done + run]
            ring.commit_run(run, frame_len)
            if self.pcap is not None:
                for row in rows:
                    self.pcap.record(row[DATA_OFFSET : DATA_OFFSET + frame_len])
            done += run

    def _send_each(self, messages: Sequence[BytesLike], start: int, stop: int) -> None:
        """Frame by frame: a template stamped into each slot, fragments copied in slot by slot."""
        ring = self.ring
        for index in range(start, stop):
            message = messages[index]
            if self.fit is Fit.FRAGMENT and not self.fits(message):
                for frame in self.frames_for(index, message):
                    offset = ring.claim()
                    ring.map[offset : offset + len(frame)] = frame
                    ring.commit(len(frame))
                    self.record(frame)
                continue
            offset = ring.claim()
            length = self.templates[index].stamp_into(ring.map, offset, self.fitted(message))
            ring.commit(length)
            self.record(ring.map[offset : offset + length])
