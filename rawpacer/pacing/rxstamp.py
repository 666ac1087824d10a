"""Kernel receive timestamps (SO_TIMESTAMPNS) of the datagrams a socket gets, for the pacing bench
and tests until the readers record them themselves.

The kernel stamps a packet as it enters the receive path (on lo and veth: as the sender hands it
over, in the sender's context), so the stamps show when datagrams left the writer, undisturbed by
when the reader gets to read them. They are CLOCK_REALTIME: only differences are meaningful.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from rawpacer.errors import RawpacerError

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Ask for a ``struct timespec`` receive time with every datagram (socket(7))."""

SCM_TIMESTAMPNS = SO_TIMESTAMPNS
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux: tv_sec, tv_nsec

RCVBUF = 256 << 20
"""Receive buffer asked for (SO_RCVBUFFORCE as root): a whole stream waits in it, read afterwards."""

Keep = Callable[[bytes, object], bool]


def enable(sock: socket.socket, rcvbuf: int = RCVBUF) -> None:
    """Turn on receive timestamps and a buffer big enough to hold a whole stream unread."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)


def timestamp_ns(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The SCM_TIMESTAMPNS receive time in ``recvmsg`` ancillary data, in ns (None if absent)."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return int(sec * 1_000_000_000 + nsec)
    return None


def collect(
    sock: socket.socket, count: int, *, idle_s: float = 1.0, size: int = 65536, keep: Keep | None = None
) -> npt.NDArray[np.int64]:
    """Receive up to ``count`` datagrams (``keep(data, address)`` ones only); their receive times (ns).

    Stops early after ``idle_s`` with nothing to read. A datagram without a timestamp is an error.
    """
    stamps = np.empty(count, dtype=np.int64)
    got = 0
    space = socket.CMSG_SPACE(_TIMESPEC.size)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while got < count:
        if not poller.poll(idle_s * 1000):
            break
        data, ancdata, _, address = sock.recvmsg(size, space)
        if keep is not None and not keep(data, address):
            continue
        stamp = timestamp_ns(ancdata)
        if stamp is None:
            raise RawpacerError("a datagram arrived without SO_TIMESTAMPNS ancillary data")
        stamps[got] = stamp
        got += 1
    return stamps[:got]
