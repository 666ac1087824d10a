"""The one transmit engine: "frames plus a ring", in C (``_engine.c``).

A ``Pool`` holds a writer's frames in one buffer (frame k of a stream is frame k % n); an
``Engine`` is one of three back ends behind one ``send``: ``sendmmsg`` batches on a socket, the
TPACKET_V2 TX ring, or AF_XDP's UMEM with its TX and completion rings (``Ring``, libxdp's
reserve / submit / peek / release with acquire/release ordering). ``send`` pushes a span of the
pool's stream through the back end, unpaced (``batch`` frames at a time) or paced by the pacer's C
core at any burst, stamping each frame's stream sequence on the way when asked, and ``--vary``'s
per-frame fields (``stamps``, ``rawpacer.traffic.stamp``: written into the ring slot or UMEM chunk a
frame is copied to, checksums fixed). Writers say how to build frames and which ring; the engine moves them.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rawpacer.errors import Unavailable

if TYPE_CHECKING:
    from rawpacer._pace import Core
    from rawpacer.pacing import Pacer
    from rawpacer.traffic.stamp import FieldStamp

try:
    from rawpacer.engine._engine import Engine, Pool, Ring, mmsg, tpacket, xdp
except ImportError:  # built without a compiler: the writers that need the engine say so
    BUILT = False
else:
    BUILT = True

__all__ = [
    "BUILT",
    "Engine",
    "Frames",
    "Pool",
    "Ring",
    "addressed",
    "mmsg",
    "paced",
    "pinned",
    "pool",
    "require",
    "rows",
    "sockaddrs",
    "tpacket",
    "xdp",
]

Buffer = bytes | bytearray | memoryview
"""One frame: any bytes-like object."""


def require(writer: str) -> None:
    """Unavailable naming ``writer`` when the engine's extension was not built."""
    if not BUILT:
        raise Unavailable(
            f"{writer} sends through the transmit engine (rawpacer.engine._engine), which is not built: "
            "reinstall rawpacer with a C compiler"
        )


def pool(frames: Sequence[Buffer], addresses: bytes | None = None) -> Pool:
    """``frames`` copied back to back into one writable buffer, with ``addresses`` (one sockaddr a
    frame, back to back, as ``sockaddrs`` makes them) or none."""
    offsets, at = [], 0
    for frame in frames:
        offsets.append(at)
        at += len(frame)
    return Pool(bytearray(b"".join(frames)), offsets, [len(f) for f in frames], addresses)


def pinned(frames: Sequence[Buffer], addresses: bytes | None = None) -> Pool:
    """``frames`` where they are (no copy; a sequence stamped into them when they are writable), with
    ``addresses`` (one sockaddr a frame, back to back, as ``sockaddrs`` makes them) or none."""
    return Pool(frames, None, None, addresses)


def sockaddrs(ip: str, ports: Sequence[int]) -> bytes:
    """``struct sockaddr_in`` (IPv4) or ``sockaddr_in6`` (IPv6) for ``ip`` and each port, back to back:
    family in host order, port and address in network order (ip(7), ipv6(7))."""
    return addressed([(ip, port) for port in ports])


def addressed(destinations: Sequence[tuple[str, int]]) -> bytes:
    """One ``sockaddr_in`` / ``sockaddr_in6`` for each ``(ip, port)``, back to back, as ``sockaddrs``
    makes them: a frame each when every frame has its own destination (a shaped stream's ``--vary``)."""
    heads: dict[str, tuple[bool, bytes, bytes]] = {}
    out = []
    for ip, port in destinations:
        known = heads.get(ip)
        if known is None:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            known = heads[ip] = (family == socket.AF_INET6, struct.pack("=H", family), socket.inet_pton(family, ip))
        six, head, address = known
        if six:
            out.append(head + struct.pack(">HI", port, 0) + address + bytes(4))
        else:
            out.append(head + struct.pack(">H", port) + address + bytes(8))
    return b"".join(out)


def rows(data: Buffer, count: int, frame_len: int, stride: int) -> Pool:
    """``count`` frames of ``data`` read as rows of ``stride`` bytes, each frame the first ``frame_len``
    bytes of its row (a writer's staging array, no copy)."""
    return Pool(data, range(0, count * stride, stride), [frame_len] * count)


@dataclass
class Frames:
    """Frames plus a ring: a pool and the engine it goes through, the writer's unpaced ``batch``,
    where a stream's sequence sits in each frame (None: nowhere to stamp it), and the fields stamped
    per frame (``FramePool.stamps``; empty: none)."""

    engine: Engine
    pool: Pool
    batch: int
    sequence_at: int | None = None
    stamps: Sequence[FieldStamp] = ()

    def send(self, first: int, count: int, core: Core | None = None, sequence: int | None = None) -> int:
        """Frames ``first .. first+count-1`` of the pool's stream, unpaced or paced by ``core``; with
        ``sequence``, the round ``first`` is in carries it, each later round one more. Frames sent."""
        stamp = None if sequence is None or self.sequence_at is None else (self.sequence_at, sequence)
        return self.engine.send(self.pool, first, count, self.batch, core, stamp, self.stamps or None)


def paced(frames: Frames, pacer: Pacer, count: int, first: int = 0) -> int:
    """Frames ``first .. first+count-1`` of ``frames``' stream, ``pacer.burst`` a departure: the loop in C
    paced by the pacer's core when it has one on the real clock (``Pacer.loop_core``), else each
    departure waited for in Python (``pacer.wait``, the pacer's twin or a test's clock) and its burst
    handed to the engine. Frames sent (an OSError or Ctrl-C leaves ``frames.engine.sent`` counting)."""
    core = pacer.loop_core
    if core is not None:
        pacer.implementation = "c-loop"
        return frames.send(first, count, core)
    sent, burst, departure = 0, pacer.burst, pacer.next_departure
    for done in range(0, count, burst):
        pacer.wait(departure)
        sent += frames.send(first + done, min(burst, count - done))
        departure += 1
    return sent
