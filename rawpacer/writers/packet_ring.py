"""``packet-ring``: frames stamped straight into a PACKET_MMAP TX ring, one send() per fan-out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rawpacer.headers import ETH_HLEN, IPV4_HLEN, UDP_HLEN
from rawpacer.headers.checksum import BytesLike, ones_sum
from rawpacer.kernel.tpacket import DATA_OFFSET, TxRing, fanout_frames
from rawpacer.target import Target
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import Fit, WriterOptions, register
from rawpacer.writers.packet_raw import open_packet_socket

HEADERS = ETH_HLEN + IPV4_HLEN + UDP_HLEN
UDP_CSUM = ETH_HLEN + IPV4_HLEN + 6


class _Batch:
    """Every port's 42 header bytes for one payload length, and each UDP checksum's fixed part.

    With the length fixed, only the UDP checksum changes from one fan-out to the next: it is the
    fixed part (pseudo-header + UDP header) plus the payload's sum, one C call per message.
    """

    def __init__(self, writer: RawWriter, payload_len: int) -> None:
        frames = [t.stamp(bytes(payload_len)) for t in writer.templates]
        self.headers = np.frombuffer(b"".join(f[:HEADERS] for f in frames), np.uint8).reshape(-1, HEADERS)
        ip = ETH_HLEN
        pseudo_and_udp = (
            f[ip + 12 : ip + 20] + b"\0\x11" + f[ip + 24 : ip + 26] + f[ip + 20 : ip + 26] for f in frames
        )
        self.bases = [ones_sum(part) for part in pseudo_and_udp]


@register
class PacketRingWriter(RawWriter):
    """TPACKET_V2 TX ring: each frame written into its ring slot, the whole fan-out flushed at once.

    ``options.ring_frames`` sizes the ring (0: one fan-out's frames, at least 512 slots); ``options.qdisc_bypass`` (default on)
    hands frames to the driver without the qdisc. A full ring is flushed and waited on, never
    overwritten. Fan-outs of equal-length messages that need no fragmenting are stamped a run of
    slots at a time (headers, checksums and payloads as whole arrays); others frame by frame.
    """

    name = "packet-ring"
    order = 11
    summary = "AF_PACKET PACKET_MMAP TX ring (TPACKET_V2), one send() flushes the fan-out"

    def __init__(self, target: Target, options: WriterOptions) -> None:
        super().__init__(target, options)
        self.sock = open_packet_socket(target.link.ifname)
        try:
            frames = options.ring_frames or fanout_frames(self.max_frame, len(target.ports) * self.frames_per_message)
            self.ring = TxRing(self.sock, self.max_frame, frames, qdisc_bypass=options.qdisc_bypass)
        except BaseException:
            self.sock.close()
            raise
        self._batches: dict[int, _Batch] = {}
        self._frames = np.empty((0, 0), np.uint8)
        """The last fan-out's frames, one per row; reused from op to op (no per-op allocation)."""
        self._replayable = False

    def send(self, messages: Sequence[bytes | memoryview]) -> int:
        """Fresh messages: frames stamped into the ring, one ``send`` flushes them all."""
        return self._send(messages, replay=False)

    def resend(self, messages: Sequence[bytes | memoryview]) -> int:
        """The previous fan-out again: frames built once are copied into the ring, as trafgen does."""
        return self._send(messages, replay=True)

    def _send(self, messages: Sequence[bytes | memoryview], replay: bool) -> int:
        self.check_fanout(messages)
        sizes = set(map(len, messages))
        size = sizes.pop()
        if sizes or (self.fit is Fit.FRAGMENT and size > self.limit):
            self._replayable = False
            self._send_each(messages)
        else:
            if not (replay and self._replayable):
                self._compose(messages, size)
                self._replayable = True
            self._put(self._frames)
        self.ring.flush()
        return len(messages)

    def _compose(self, messages: Sequence[BytesLike], size: int) -> None:
        """All messages ``size`` bytes long: every frame as one row of ``_frames`` (headers and
        checksums as arrays)."""
        count = len(messages)
        payload_len = min(size, self.limit)
        batch = self._batches.get(payload_len) or self._batches.setdefault(payload_len, _Batch(self, payload_len))
        payloads = np.frombuffer(b"".join(messages), np.uint8).reshape(count, size)[:, :payload_len]
        if payload_len == size:
            sums = [ones_sum(m, b) ^ 0xFFFF or 0xFFFF for m, b in zip(messages, batch.bases)]
        else:
            sums = [ones_sum(p, b) ^ 0xFFFF or 0xFFFF for p, b in zip(payloads, batch.bases)]
        if self._frames.shape != (count, HEADERS + payload_len):
            self._frames = np.empty((count, HEADERS + payload_len), np.uint8)
        frames = self._frames
        frames[:, :HEADERS] = batch.headers
        frames[:, UDP_CSUM : UDP_CSUM + 2] = np.array(sums, ">u2").view(np.uint8).reshape(count, 2)
        frames[:, HEADERS:] = payloads

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

    def _send_each(self, messages: Sequence[BytesLike]) -> None:
        """Frame by frame: a template stamped into each slot, fragments copied in slot by slot."""
        ring = self.ring
        for index, message in enumerate(messages):
            if self.fit is Fit.FRAGMENT and not self.fits(message):
                frames = self.frames_for(index, message)
            else:
                offset = ring.claim()
                length = self.templates[index].stamp_into(ring.map, offset, self.fitted(message))
                ring.commit(length)
                self.record(ring.map[offset : offset + length])
                continue
            for frame in frames:
                offset = ring.claim()
                ring.map[offset : offset + len(frame)] = frame
                ring.commit(len(frame))
                self.record(frame)

    def _close(self) -> None:
        self.ring.close()
        self.sock.close()
