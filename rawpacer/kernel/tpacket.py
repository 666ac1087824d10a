"""A PACKET_MMAP TX ring (TPACKET_V2): slots in memory shared with the kernel, flushed by one send.

Layout (kernel Documentation/networking/packet_mmap): the ring is ``block_nr`` blocks of
``block_size`` bytes (page multiples), each cut into ``frame_size``-byte slots (16-byte aligned).
A slot starts with a ``struct tpacket2_hdr`` (32 bytes); for TX the frame bytes follow at
``TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`` = 32. The user owns a slot whose ``tp_status`` is
TP_STATUS_AVAILABLE, writes the frame and ``tp_len``, then sets TP_STATUS_SEND_REQUEST; a
``send()`` on the socket makes the kernel transmit every requested slot in ring order and hand
each back (AVAILABLE) once the device is done with it, or mark it TP_STATUS_WRONG_FORMAT.
"""

from __future__ import annotations

import mmap
import select
import socket
import struct

import numpy as np

from rawpacer.errors import DeliveryError, require

SOL_PACKET = 263
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_QDISC_BYPASS = 20
TPACKET_V2 = 1

TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_SENDING = 2
TP_STATUS_WRONG_FORMAT = 4

TPACKET_ALIGNMENT = 16
TPACKET2_HDR = struct.Struct("=IIIHHIIHH4x")
"""struct tpacket2_hdr: status, len, snaplen, mac, net, sec, nsec, vlan_tci, vlan_tpid, padding."""
SOCKADDR_LL_SIZE = 20
TPACKET2_HDRLEN = -(-TPACKET2_HDR.size // TPACKET_ALIGNMENT) * TPACKET_ALIGNMENT + SOCKADDR_LL_SIZE
DATA_OFFSET = TPACKET2_HDRLEN - SOCKADDR_LL_SIZE
"""Where the kernel reads a TX frame inside its slot (no PACKET_TX_HAS_OFF)."""
_STATUS_LEN = struct.Struct("=II")
_SLOT_HEAD = struct.Struct("=III")
"""tp_status, tp_len, tp_snaplen: written together once the frame bytes are in the slot."""
_BUSY = TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING | TP_STATUS_WRONG_FORMAT
PAGE = mmap.PAGESIZE
DEFAULT_FRAMES = 512
MAX_RING_BYTES = 64 << 20


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def ring_geometry(max_frame: int, frames: int) -> tuple[int, int, int, int]:
    """``(block_size, block_nr, frame_size, frame_nr)`` for slots holding ``max_frame`` bytes.

    Slots are a power of two (so they tile a page-multiple block exactly); ``frames`` is rounded up
    to fill whole blocks. UsageError if the ring would exceed 64 MiB.
    """
    require(
        isinstance(frames, int) and frames >= 1,
        f"ring_frames {frames!r} is not allowed (use 0 for the default, or 1 and up)",
    )
    frame_size = 1 << max(DATA_OFFSET + max_frame - 1, TPACKET_ALIGNMENT).bit_length()
    block_size = max(frame_size, PAGE)
    per_block = block_size // frame_size
    block_nr = -(-frames // per_block)
    require(
        block_nr * block_size <= MAX_RING_BYTES,
        f"ring_frames {frames} of {frame_size}-byte slots needs {block_nr * block_size} bytes "
        f"(allowed: up to {MAX_RING_BYTES})",
    )
    return block_size, block_nr, frame_size, block_nr * per_block


def fanout_frames(max_frame: int, wanted: int) -> int:
    """Slots for a default ring: room for ``wanted`` frames (one whole fan-out, so a flush never
    waits on a full ring), at least DEFAULT_FRAMES, at most what fits in MAX_RING_BYTES."""
    frame_size = ring_geometry(max_frame, 1)[2]
    return max(1, min(max(DEFAULT_FRAMES, wanted), MAX_RING_BYTES // frame_size))


class TxRing:
    """A TPACKET_V2 TX ring on a bound AF_PACKET socket: claim a slot, fill it, commit, flush."""

    def __init__(self, sock: socket.socket, max_frame: int, frames: int = 0, *, qdisc_bypass: bool = True) -> None:
        self.sock = sock
        self.block_size, self.block_nr, self.frame_size, self.frame_nr = ring_geometry(
            max_frame, frames or DEFAULT_FRAMES
        )
        self.max_frame = self.frame_size - DATA_OFFSET
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        if qdisc_bypass:
            sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        req = struct.pack("=IIII", self.block_size, self.block_nr, self.frame_size, self.frame_nr)
        sock.setsockopt(SOL_PACKET, PACKET_TX_RING, req)
        self.map = mmap.mmap(
            sock.fileno(), self.block_size * self.block_nr, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        self.offsets = [i * self.frame_size for i in range(self.frame_nr)]
        self.rows = np.frombuffer(self.map, np.uint8).reshape(self.frame_nr, self.frame_size)
        """Slot i as row i (slots are a power of two, so they tile the blocks back to back)."""
        self.words = self.rows.view(np.uint32)
        self.head = 0
        self.pending = 0
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLOUT)

    def claim(self) -> int:
        """Offset in ``map`` where the next frame's bytes go; flushes and waits while the slot is the kernel's."""
        offset = self.offsets[self.head]
        if self.map[offset] & _BUSY:
            self._wait_available(offset)
        return offset + DATA_OFFSET

    def commit(self, length: int) -> None:
        """Hand the claimed slot (holding ``length`` frame bytes) to the kernel and move on.

        Status and length go in one write: the kernel only reads the ring inside our send(), so
        nothing can see a half-written header.
        """
        _SLOT_HEAD.pack_into(self.map, self.offsets[self.head], TP_STATUS_SEND_REQUEST, length, length)
        self.head += 1
        if self.head == self.frame_nr:
            self.head = 0
        self.pending += 1

    def reserve(self, want: int) -> tuple[int, int]:
        """``(first, count)``: up to ``want`` consecutive free slots from the head, never past the ring's end.

        Waits (flush, then poll) while the head slot is still the kernel's; count is at least 1.
        """
        self.claim()
        end = min(self.head + want, self.frame_nr)
        busy = self.words[self.head : end, 0] & _BUSY
        count = int(busy.argmax()) if busy.any() else end - self.head
        return self.head, count

    def commit_run(self, count: int, length: int) -> None:
        """Hand ``count`` reserved slots, each holding a ``length``-byte frame, to the kernel."""
        self.words[self.head : self.head + count, :3] = (TP_STATUS_SEND_REQUEST, length, length)
        self.head = (self.head + count) % self.frame_nr
        self.pending += count

    def flush(self) -> None:
        """One non-blocking send(): the kernel transmits every requested slot, in ring order.

        Like trafgen, it does not wait for the device to hand slots back (``claim`` does that when
        it needs one); if the socket's send buffer is full it polls and sends again until the last
        requested slot has been taken. A slot the kernel refuses is left TP_STATUS_WRONG_FORMAT and
        send() fails: DeliveryError names the slot.
        """
        if not self.pending:
            return
        last = self.offsets[self.head - 1]
        while True:
            try:
                self.sock.send(b"", socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            except OSError as exc:
                self._raise_wrong_format(exc)
                raise
            if not self.map[last] & TP_STATUS_SEND_REQUEST:
                break
            self._poll.poll(100)
        self.pending = 0

    def _wait_available(self, offset: int) -> None:
        """A full ring: flush what is requested, then poll until the kernel frees this slot."""
        status = self.map[offset] & _BUSY
        while status:
            if status & TP_STATUS_WRONG_FORMAT:
                self._raise_wrong_format(None)
            if status == TP_STATUS_SEND_REQUEST:
                self.flush()
            else:
                self._poll.poll(100)
            status = self.map[offset] & _BUSY

    def _raise_wrong_format(self, cause: OSError | None) -> None:
        for index in range(self.frame_nr):
            offset = self.offsets[index]
            status, length = _STATUS_LEN.unpack_from(self.map, offset)
            if status & TP_STATUS_WRONG_FORMAT:
                reason = f" ({cause})" if cause else ""
                raise DeliveryError(
                    f"TX ring slot {index} is TP_STATUS_WRONG_FORMAT: the kernel refused its {length}-byte "
                    f"frame (slot holds {self.max_frame}){reason}"
                ) from cause

    def close(self) -> None:
        """Unmap the ring (the socket is the caller's). Safe to call twice."""
        if not self.map.closed:
            del self.rows, self.words  # the arrays view the mapping: drop them before unmapping
            self.map.close()
