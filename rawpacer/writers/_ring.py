"""What the writers that move frames through a ring share (``packet-ring``, ``xdp``): how the frames
are built. A fan-out of equal-length messages that need no fragmenting is stamped as rows of one
staging array (headers and checksums as whole arrays, ``_batch``), kept for replays and restamped
in place; anything else is built frame by frame. Either way the frames are a ``rawpacer.engine``
pool, and the writer's engine (its ring) moves them: the subclass only opens the ring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rawpacer.engine import Engine, Frames, Pool, pool, require, rows
from rawpacer.headers.sequence import stamp_sequence
from rawpacer.target import Target
from rawpacer.writers._batch import Batches
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import MAX_BATCH, Fit, Knobs, Message, WriterOptions

if TYPE_CHECKING:
    from rawpacer.traffic.pool import FramePool


class RingWriter(RawWriter):
    """A raw writer whose frames go through ``self.engine``; subclasses open the ring and set it."""

    engine: Engine

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        require(self.name)
        self._batches = Batches(self.templates)
        self._frames = np.empty((0, 0), np.uint8)
        """The last fan-out's frames, one per row; reused from op to op (no per-op allocation)."""
        self._pool: Pool | None = None
        """``_frames`` as the engine's pool (remade when its shape changes)."""
        self._composed = np.zeros(0, bool)
        """Which rows of ``_frames`` hold the current messages' frames (replayable as they are)."""

    def restamp(self, sequence: int) -> None:
        """The new sequence into the kept frames' payloads, every row in one call (the engine copies
        them into the ring, so frames already handed over keep theirs)."""
        if self._frames.size:  # rows not composed yet are rebuilt before they are sent: stamping them is harmless
            stamp_sequence(self._frames, self._frames.shape[1], self.templates[0].header_len, sequence)

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """The span's frames (kept rows when replaying, else built) pushed through the engine."""
        size = len(messages[start])
        if replay and len(self._composed) == len(messages) and self._composed[start:stop].all():
            return self._push(self._rows_pool(), start, stop - start, self._frames[start:stop])
        if len(set(map(len, messages[start:stop]))) > 1 or (self.fit is Fit.FRAGMENT and size > self.limit):
            self._composed[:] = False
            frames = [frame for index in range(start, stop) for frame in self.frames_for(index, messages[index])]
            pushed = self._push(pool(frames), 0, len(frames), frames)
            return stop - start if pushed == len(frames) else pushed * (stop - start) // len(frames)
        batch = self._batches[min(size, self.limit)]
        if self._frames.shape != (len(messages), batch.frame_len):
            self._frames = np.empty((len(messages), batch.frame_len), np.uint8)
            self._composed = np.zeros(len(messages), bool)
            self._pool = None
        batch.compose(self._frames[start:stop], messages, start, stop)
        self._composed[start:stop] = True
        return self._push(self._rows_pool(), start, stop - start, self._frames[start:stop])

    def send_frames(self, frames: Sequence[Message]) -> int:
        """Prebuilt frames as they are, through the engine."""
        self.check_frames(frames)
        return self._push(pool(frames), 0, len(frames), frames)

    def replay_frames(self, messages: Sequence[Message]) -> Frames | None:
        """The fan-out's rows of frames and this writer's engine: the rows a ``send`` of ``messages``
        composes in place (so they may be asked for before it); None when ``send`` would build
        them frame by frame (mixed lengths, fragments), before the rows exist, or with a pcap to record."""
        size = len(messages[0])
        if self.pcap is not None or len(set(map(len, messages))) > 1:
            return None
        if self.fit is Fit.FRAGMENT and size > self.limit:
            return None
        if self._frames.shape != (len(messages), self._batches[min(size, self.limit)].frame_len):
            return None
        return Frames(self.engine, self._rows_pool(), min(len(messages), MAX_BATCH), self.templates[0].header_len)

    def pool_frames(self, pool: FramePool) -> Frames | None:
        """The pool's frames as they are, through the ring, up to 1024 a kick unpaced."""
        return self.pooled(self.engine, pool, MAX_BATCH)

    def _rows_pool(self) -> Pool:
        if self._pool is None or not self._pool.frames:  # none yet, or released after a stream
            count, length = self._frames.shape
            self._pool = rows(self._frames.data.cast("B"), count, length, length)
        return self._pool

    def _push(self, pool: Pool, first: int, count: int, frames: Sequence[Message] | np.ndarray) -> int:
        """Frames ``first .. first+count-1`` of ``pool`` through the engine, ``MAX_BATCH`` a kick
        (recorded to the pcap when asked); how many were sent (not those the driver dropped)."""
        try:
            sent = self.engine.send(pool, first, count, min(count, MAX_BATCH))
        except OSError as exc:
            raise self._failure(exc) from None
        if self.pcap is not None:
            for frame in frames:
                self.pcap.record(frame)
        return sent

    pool_batch = MAX_BATCH
    """A replay's top-speed frames, up to a ring flush a kick."""

    def frame_engine(self) -> Engine:
        """The ring's engine: prebuilt frames too leave through it."""
        return self.engine
