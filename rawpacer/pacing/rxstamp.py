"""Kernel receive timestamps (SO_TIMESTAMPNS) of the datagrams a socket gets, for the pacing bench
and tests until the readers record them themselves.

The kernel stamps a packet as it enters the receive path (on lo and veth: as the sender hands it
over, in the sender's context), so the stamps show when datagrams left the writer, undisturbed by
when the reader gets to read them. They are CLOCK_REALTIME: only differences are meaningful.

One trap: the first socket to ask for timestamps switches stamping on for the whole kernel
through a workqueue (net_enable_timestamp defers the static key), and a datagram that arrives
before the switch is stamped when it is *read* instead (``__sock_recv_timestamp`` fills in the
current time). ``open_reader`` waits until a probe datagram is stamped on arrival.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rawpacer.errors import RawpacerError
from rawpacer.kernel.sockbuf import set_buffer_size
from rawpacer.kernel.timestamping import SO_TIMESTAMPNS, TIMESPEC, timestamp_ns

if TYPE_CHECKING:  # the reader process opens its stamp keeper here without numpy
    import numpy as np
    import numpy.typing as npt

PROBE_PAUSE_S = 0.02

RCVBUF = 256 << 20
"""Receive buffer asked for (SO_RCVBUFFORCE as root): a whole stream waits in it, read afterwards."""

Keep = Callable[[bytes, object], bool]


def enable(sock: socket.socket, rcvbuf: int = RCVBUF) -> None:
    """Turn on receive timestamps and a buffer big enough to hold a whole stream unread."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    set_buffer_size(sock, "rcv", rcvbuf)


def open_reader(ip: str, port: int, *, timeout_s: float = 5.0) -> socket.socket:
    """A UDP socket bound to ip:port (in this thread's namespace) whose datagrams are stamped on arrival.

    Sends itself probe datagrams until one's stamp is earlier than a pause between its send and
    its read; RawpacerError if stamping is still off after ``timeout_s``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        enable(sock)
        sock.bind((ip, port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            deadline = time.monotonic() + timeout_s
            while True:
                probe.sendto(b"probe", sock.getsockname())
                sent_ns = time.time_ns()
                time.sleep(PROBE_PAUSE_S)
                _, ancdata, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(TIMESPEC.size))
                stamp = timestamp_ns(ancdata)
                if stamp is not None and stamp - sent_ns < PROBE_PAUSE_S * 1e9 / 2:
                    return sock
                if time.monotonic() > deadline:
                    raise RawpacerError(f"datagrams to {ip}:{port} are still stamped when read, not on arrival")
    except BaseException:
        sock.close()
        raise


def collect(
    sock: socket.socket, count: int, *, idle_s: float = 1.0, size: int = 65536, keep: Keep | None = None
) -> npt.NDArray[np.int64]:
    """Receive up to ``count`` datagrams (``keep(data, address)`` ones only); their receive times (ns).

    Stops early after ``idle_s`` with nothing to read. A datagram without a timestamp is an error.
    """
    import numpy as np  # here, not above: see the imports

    stamps = np.empty(count, dtype=np.int64)
    got = 0
    space = socket.CMSG_SPACE(TIMESPEC.size)
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
