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
import socket
import struct

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
PAGE = mmap.PAGESIZE
DEFAULT_FRAMES = 512
MAX_RING_BYTES = 64 << 20
STALL_S = 1.0
"""The engine's longest wait for the kernel to take or free a slot (STALL_MS in _engine.c)."""


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
    """A TPACKET_V2 TX ring set up and mapped on a bound AF_PACKET socket; the transmit engine
    (``rawpacer.engine.tpacket``) fills its slots and flushes them."""

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

    def refused(self, cause: OSError | None) -> DeliveryError | None:
        """DeliveryError naming the first slot the kernel marked TP_STATUS_WRONG_FORMAT, if one is."""
        for index in range(self.frame_nr):
            status, length = _STATUS_LEN.unpack_from(self.map, index * self.frame_size)
            if status & TP_STATUS_WRONG_FORMAT:
                reason = f" ({cause})" if cause else ""
                return DeliveryError(
                    f"TX ring slot {index} is TP_STATUS_WRONG_FORMAT: the kernel refused its {length}-byte "
                    f"frame (slot holds {self.max_frame}){reason}"
                )
        return None

    def close(self) -> None:
        """Unmap the ring (the socket is the caller's). Safe to call twice."""
        if not self.map.closed:
            self.map.close()
