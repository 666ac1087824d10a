"""The kernel's socket timestamps: receive stamps (``SO_TIMESTAMPNS``, socket(7)) and the software
TX timestamps of chosen sends on one socket (``SO_TIMESTAMPING``).

Documentation/networking/timestamping.rst: with ``SOF_TIMESTAMPING_TX_SOFTWARE`` on, the device
driver stamps each datagram as it leaves (``skb_tx_timestamp``; on ``lo`` in ``loopback_xmit``)
and queues the stamp on the sender's error queue; ``OPT_ID`` numbers the stamped sends 0, 1, 2 ...
(the counter restarts when the option is switched on again) and ``OPT_TSONLY`` queues the stamp
alone, not a copy of the packet. Both kinds of stamp are CLOCK_REALTIME timespecs.
The error queue is charged to the socket's receive buffer: stamps beyond it are dropped.
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING

from rawpacer.kernel.sockbuf import set_buffer_size

if TYPE_CHECKING:  # the reader process parses receive stamps without numpy
    import numpy as np
    import numpy.typing as npt

TIMESPEC = struct.Struct("=qq")
"""``struct timespec`` on 64-bit Linux: tv_sec, tv_nsec. A receive stamp is one; ``struct
scm_timestamping`` is three, the software stamp first."""

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Ask for each datagram's software receive time as a timespec cmsg (socket(7))."""
SCM_TIMESTAMPNS = SO_TIMESTAMPNS


def timespec_ns(data: bytes) -> int:
    """A timespec's time in ns since the epoch."""
    seconds, nanoseconds = TIMESPEC.unpack_from(data)
    return int(seconds * 1_000_000_000 + nanoseconds)


def timestamp_ns(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The SCM_TIMESTAMPNS receive time in ``recvmsg`` ancillary data, in ns (None if absent)."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            return timespec_ns(data)
    return None


SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
REPORT = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY
"""Reporting flags held for the whole sampling; TX_SOFTWARE is added only around a chosen send."""

MSG_ERRQUEUE = 0x2000
SO_EE_ORIGIN_TIMESTAMPING = 4
SOCK_EXTENDED_ERR = struct.Struct("=IBBBBII")
"""struct sock_extended_err (linux/errqueue.h): errno, origin, type, code, pad, info, data (the id)."""

ERRQUEUE_BYTES = 32 << 20
"""Receive buffer given to the sending socket for its error queue: a TSONLY stamp costs about 1 KiB
of it (measured: the default 208 KiB held 255), so some 30,000 stamps fit."""
STAMPS_PER_TRIAL = 10_000
"""How many datagrams a trial asks the kernel to stamp, well inside ``ERRQUEUE_BYTES``."""


class TxStamps:
    """Software TX stamps of chosen sends on ``sock``, read back in send order once the sends are done."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.on = False
        self._drain()
        set_buffer_size(sock, "rcv", ERRQUEUE_BYTES)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, REPORT)

    def record(self, on: bool) -> None:
        """Stamp the sends that follow (``on``) or not; a system call only when that changes."""
        if on != self.on:
            self.sock.setsockopt(
                socket.SOL_SOCKET, SO_TIMESTAMPING, REPORT | (SOF_TIMESTAMPING_TX_SOFTWARE if on else 0)
            )
            self.on = on

    def collect(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Return each stamp's id (its place among the stamped sends) and time (ns, CLOCK_REALTIME),
        then switch stamping off (the next ``TxStamps`` restarts the ids). The reporting flags are
        read when the queue is read, so they stay on until it is empty."""
        import numpy as np  # here, not above: see the imports

        self.record(False)
        found = self._drain()
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, 0)
        keys = np.fromiter((key for key, _ in found), np.int64, len(found))
        times = np.fromiter((ns for _, ns in found), np.int64, len(found))
        return keys, times

    def _drain(self) -> list[tuple[int, int]]:
        """Everything on the error queue: (id, ns) of each timestamp, other reports skipped."""
        found: list[tuple[int, int]] = []
        while True:
            try:
                _, ancillary, _, _ = self.sock.recvmsg(0, 256, MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except BlockingIOError:
                return found
            stamp = key = None
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                    stamp = timespec_ns(data)  # scm_timestamping's first timespec: the software stamp
                elif len(data) >= SOCK_EXTENDED_ERR.size:
                    _, origin, _, _, _, _, ident = SOCK_EXTENDED_ERR.unpack_from(data)
                    key = ident if origin == SO_EE_ORIGIN_TIMESTAMPING else None
            if stamp is not None and key is not None:
                found.append((key, stamp))
