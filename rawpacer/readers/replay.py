"""``ReplayReaders``: the readers of a replay, one reader process recording every datagram.

A replay's datagrams all differ, so the one-message-per-port check of ``ReaderSet`` does not fit:
the process (``readers.recorder``) records, per datagram, the reader slot (its flow), its length,
a 64-bit hash of its content (``replaymatch.datagram_hash``) and its kernel receive timestamp
(SO_TIMESTAMPNS), in C when built (``readers._record``) or in its Python twin, and hands the four
arrays to the parent in one memfd when asked (``take`` while the replay runs, ``collect`` at the
end); ``streammatch`` (or ``replaymatch``, on the whole) judges them. The process lives like
ReaderSet's: started by ``spawn``, in the readers' namespace, stopped (killed if it lingers) and
reaped on close, on error and at exit.
"""

from __future__ import annotations

import marshal
import mmap
import os
import socket
import weakref
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from rawpacer.errors import RawpacerError, ReaderDied, require
from rawpacer.limits import FIRST_PORT, MAX_READERS
from rawpacer.readers import protocol, spawn
from rawpacer.readers.readerset import READY_TIMEOUT_S, _passed_fds, _reap, _stop_child, auto_rcvbuf, control_pair
from rawpacer.readers.recorder import (
    BYTES_PER_DATAGRAM,
    COLLECT,
    COLLECT_CAP_S,
    ERROR,
    READY,
    RESULT,
    TAKE,
    resolve_recorder,
)

CHILD_MAIN = "rawpacer.readers.recorder:child_main"


@dataclass(frozen=True)
class Received:
    """Every datagram the readers got, in arrival order: slot (flow), length, content hash, kernel RX time."""

    slot: npt.NDArray[np.int32]
    length: npt.NDArray[np.int32]
    digest: npt.NDArray[np.uint64]
    rx_ns: npt.NDArray[np.int64]
    socket_drops: int

    def of_slot(self, slot: int) -> list[int]:
        """The hashes slot ``slot`` received, in arrival order."""
        return [int(h) for h in self.digest[self.slot == slot]]


class ReplayReaders:
    """``count`` reader sockets on ``topo.reader_ip`` (ports from ``first_port`` up) in one recording
    process; ``collect()`` returns what arrived since the start (or the last collect). ``recorder``
    picks the recording loop (RECORDERS); ``self.recorder`` says which runs."""

    def __init__(
        self,
        topo: Any,
        count: int,
        *,
        first_port: int = FIRST_PORT,
        rcvbuf: int | None = None,
        recorder: str = "auto",
    ) -> None:
        self.recorder = resolve_recorder(recorder)
        require(
            isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_READERS,
            f"reader count {count!r} is out of range 1-{MAX_READERS}",
        )
        rcvbuf = auto_rcvbuf(count) if rcvbuf is None else rcvbuf
        ctl, child_ctl = control_pair()
        with child_ctl:
            args = (topo.reader_ns, topo.reader_ip, count, first_port, rcvbuf, self.recorder)
            pid = spawn.start(CHILD_MAIN, (child_ctl.fileno(),), args)
        self.pid, self._ctl, self.count = pid, ctl, count
        self._finalizer = weakref.finalize(self, _stop_child, pid, ctl)
        try:
            msg, _ = self._receive(READY, READY_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        self.ports: tuple[int, ...] = tuple(msg[1])

    def _receive(self, kind: str, timeout: float) -> tuple[tuple[Any, ...], list[int]]:
        inbox = bytearray(protocol.CONTROL_BUFFER)
        self._ctl.settimeout(timeout)
        try:
            size, ancdata, _, _ = self._ctl.recvmsg_into([inbox], socket.CMSG_SPACE(4))
        except (TimeoutError, ConnectionResetError):
            size, ancdata = 0, []
        fds = _passed_fds(ancdata)
        if size == 0:
            status = _reap(self.pid, 1.0)
            raise ReaderDied(f"replay reader process {self.pid} died or did not answer (status {status})")
        msg: tuple[Any, ...] = marshal.loads(inbox[:size])
        if msg[0] == ERROR:
            _reap(self.pid, 1.0)
            raise RawpacerError(msg[1] if msg[2] else f"replay reader process failed: {msg[1]}")
        require(msg[0] == kind, f"replay reader process answered {msg[0]!r} where {kind!r} was expected")
        return msg, fds

    def collect(self, settle: float = 0.2) -> Received:
        """Everything that arrived (since the start or the last take), once nothing has for
        ``settle`` s (at most COLLECT_CAP_S)."""
        self._ctl.send(marshal.dumps((COLLECT, float(settle))))
        return self._result(COLLECT_CAP_S + 10)

    def take(self) -> Received:
        """What arrived since the start (or the last take), at once, while datagrams still come:
        the process forgets it, so a replay of any length is judged a take at a time."""
        self._ctl.send(marshal.dumps((TAKE,)))
        return self._result(READY_TIMEOUT_S)

    def _result(self, timeout: float) -> Received:
        """The records a RESULT hands over, mapped, in arrival (receive time) order."""
        msg, fds = self._receive(RESULT, timeout)
        count, drops = msg[1], msg[2]
        if not count:
            for fd in fds:
                os.close(fd)
            empty = np.zeros(0, np.int64)
            return Received(empty.astype(np.int32), empty.astype(np.int32), empty.astype(np.uint64), empty, drops)
        try:
            mapped = mmap.mmap(fds[0], count * BYTES_PER_DATAGRAM, prot=mmap.PROT_READ)
        finally:
            for fd in fds:
                os.close(fd)
        rx = np.frombuffer(mapped, np.int64, count, 0)
        digest = np.frombuffer(mapped, np.uint64, count, 8 * count)
        slot = np.frombuffer(mapped, np.int32, count, 16 * count)
        length = np.frombuffer(mapped, np.int32, count, 20 * count)
        order = np.argsort(rx, kind="stable")
        return Received(slot[order], length[order], digest[order], rx[order], drops)

    def close(self) -> None:
        """Stop (or kill) the process and reap it. Safe twice."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
