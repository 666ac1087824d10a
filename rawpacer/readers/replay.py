"""``ReplayReaders``: the readers of a replay, one reader process recording every datagram.

A replay's datagrams all differ, so the one-message-per-port check of ``ReaderSet`` does not fit:
this process records, per datagram, the reader slot (its flow), its length, a 64-bit hash of its
content (``replaymatch.datagram_hash``) and its kernel receive timestamp (SO_TIMESTAMPNS), and
hands the four arrays to the parent in one memfd when asked; ``replaymatch`` judges them. The
process lives like ReaderSet's: started by ``spawn``, in the readers' namespace, stopped (killed if it lingers)
and reaped on close, on error and at exit.
"""

from __future__ import annotations

import gc
import marshal
import mmap
import os
import select
import signal
import socket
import time
import traceback
import weakref
from array import array
from dataclasses import dataclass
from typing import Any, NoReturn, Self

import numpy as np
import numpy.typing as npt

from rawpacer.errors import RawpacerError, ReaderDied, require
from rawpacer.kernel.timestamping import TIMESPEC, timestamp_ns
from rawpacer.limits import FIRST_PORT, MAX_READERS
from rawpacer.pacing import rxstamp
from rawpacer.readers import protocol, sockets, spawn
from rawpacer.readers.process import STAMP_KEEPER_IP, keep_only
from rawpacer.readers.readerset import READY_TIMEOUT_S, _passed_fds, _reap, _stop_child, auto_rcvbuf, control_pair
from rawpacer.readers.replaymatch import datagram_hash
from rawpacer.sandbox import enter_namespace

READY, COLLECT, RESULT, ERROR = "ready", "collect", "result", "error"
BYTES_PER_DATAGRAM = 8 + 8 + 4 + 4
"""rx_ns int64, hash uint64, slot int32, length int32: the memfd's four arrays, in that order."""
MAX_DATAGRAM = 65536
CHILD_MAIN = "rawpacer.readers.replay:child_main"
COLLECT_CAP_S = 120.0
"""A collection never waits longer than this, whatever keeps arriving."""


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


class _Recorder:
    """The child's state: the sockets, the records, the control socket."""

    def __init__(self, ctl: socket.socket, ip: str, count: int, first_port: int, rcvbuf: int) -> None:
        self.ctl = ctl
        socks, self.ports = sockets.bind(ip, count, first_port, rcvbuf)
        self.socks = socks
        self.keeper = rxstamp.open_reader(STAMP_KEEPER_IP, 0)
        sockets.set_timestamps(list(socks), True)
        self.poller = select.epoll()
        self.slot_of_fd = {sock.fileno(): slot for slot, sock in enumerate(socks)}
        for fd in self.slot_of_fd:
            self.poller.register(fd, select.EPOLLIN)
        self.poller.register(ctl.fileno(), select.EPOLLIN)
        self._clear()

    def _clear(self) -> None:
        self.rx, self.digest, self.slot, self.length = array("q"), array("Q"), array("i"), array("i")

    def drain(self, slot: int) -> int:
        """Read every datagram queued on one socket; return how many."""
        sock, got = self.socks[slot], 0
        space = socket.CMSG_SPACE(TIMESPEC.size)
        while True:
            try:
                data, ancdata, _, _ = sock.recvmsg(MAX_DATAGRAM, space)
            except BlockingIOError:
                return got
            self.rx.append(timestamp_ns(ancdata) or time.time_ns())
            self.digest.append(datagram_hash(data))
            self.slot.append(slot)
            self.length.append(len(data))
            got += 1

    def serve(self) -> None:
        """Record until told to collect (then answer) or stop."""
        settle_ns = deadline = 0
        quiet_since = 0
        while True:
            timeout = -1.0 if not settle_ns else max(0.0, (quiet_since + settle_ns - time.monotonic_ns()) / 1e9)
            events = self.poller.poll(timeout)
            got = 0
            for fd, _ in events:
                slot = self.slot_of_fd.get(fd)
                if slot is not None:
                    got += self.drain(slot)
                    continue
                size = self.ctl.recv_into(inbox := bytearray(protocol.COMMAND_BUFFER))
                if not size:
                    return
                msg = marshal.loads(inbox[:size])
                if msg[0] != COLLECT:  # the one other command is the stop ReaderSet's reaper sends
                    return
                settle_ns, quiet_since = int(msg[1] * 1e9), time.monotonic_ns()
                deadline = quiet_since + int(COLLECT_CAP_S * 1e9)
            now = time.monotonic_ns()
            if got:
                quiet_since = now
            if settle_ns and (now - quiet_since >= settle_ns or now >= deadline):
                self.report()
                settle_ns = 0

    def report(self) -> None:
        """Send the records in a memfd, then start afresh."""
        count = len(self.rx)
        drops = sum(sockets.drops(sock) for sock in self.socks)
        fd = os.memfd_create("rawpacer-replay", os.MFD_CLOEXEC)
        try:
            for values in (self.rx, self.digest, self.slot, self.length):
                view = memoryview(values).cast("B")
                while view:
                    view = view[os.write(fd, view) :]
            socket.send_fds(self.ctl, [marshal.dumps((RESULT, count, drops))], [fd])
        finally:
            os.close(fd)
        self._clear()


def child_main(ctl_fd: int, namespace: str, ip: str, count: int, first_port: int, rcvbuf: int) -> NoReturn:
    """Entry of the recording process (``rawpacer.readers.spawn``): READY with the ports, or ERROR."""
    code = 1
    ctl = socket.socket(fileno=ctl_fd)
    try:
        gc.disable()  # no collector pauses while recording
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        keep_only(ctl_fd)
        if namespace:
            enter_namespace(namespace)
        recorder = _Recorder(ctl, ip, count, first_port, rcvbuf)
        ctl.send(marshal.dumps((READY, recorder.ports)))
        recorder.serve()
        code = 0
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
        ours = isinstance(exc, RawpacerError)
        detail = str(exc) if ours else "".join(traceback.format_exception_only(type(exc), exc)).strip()
        try:
            ctl.send(marshal.dumps((ERROR, detail, ours)))
        except OSError:
            pass
    finally:
        os._exit(code)


class ReplayReaders:
    """``count`` reader sockets on ``topo.reader_ip`` (ports from ``first_port`` up) in one recording
    process; ``collect()`` returns what arrived since the start (or the last collect)."""

    def __init__(self, topo: Any, count: int, *, first_port: int = FIRST_PORT, rcvbuf: int | None = None) -> None:
        require(
            isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_READERS,
            f"reader count {count!r} is out of range 1-{MAX_READERS}",
        )
        rcvbuf = auto_rcvbuf(count) if rcvbuf is None else rcvbuf
        ctl, child_ctl = control_pair()
        with child_ctl:
            args = (topo.reader_ns, topo.reader_ip, count, first_port, rcvbuf)
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
        """Everything that arrived, once nothing has for ``settle`` s (at most COLLECT_CAP_S)."""
        self._ctl.send(marshal.dumps((COLLECT, float(settle))))
        msg, fds = self._receive(RESULT, COLLECT_CAP_S + 10)
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
