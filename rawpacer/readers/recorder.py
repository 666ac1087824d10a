"""The recording process of a replay's readers (``replay.ReplayReaders`` starts it with ``spawn``).

Per datagram it records the reader slot (its flow), its length, a 64-bit hash of its content
(``replaymatch.datagram_hash``) and its kernel receive timestamp (SO_TIMESTAMPNS), and on a
collect sends the four arrays to the parent in one memfd once nothing has arrived for the settle
time, or at once on a take (what was recorded so far, while the replay runs), then forgets what it
sent, so it holds one take's records, never the replay's. The loop is C when built (``readers._record``: recvmmsg batches, the hash and the stamp per
datagram with the GIL released, no Python object per datagram), else its Python twin here (one
``recvmsg`` per datagram, ~4 us: a whole CPU at 250k datagrams/s); both keep the same records.
This module imports no numpy, pyroute2 or rich (nor ``readerset``, which does): the process
starts as a fresh interpreter and imports only what it runs (docs/readers.md).
"""

from __future__ import annotations

import gc
import marshal
import os
import select
import signal
import socket
import time
import traceback
from array import array
from typing import NoReturn

from rawpacer.errors import RawpacerError, UsageError, require
from rawpacer.kernel.timestamping import TIMESPEC, timestamp_ns
from rawpacer.pacing import rxstamp
from rawpacer.readers import protocol, sockets
from rawpacer.readers.process import STAMP_KEEPER_IP, keep_only
from rawpacer.readers.replaymatch import datagram_hash
from rawpacer.sandbox import enter_namespace

try:
    from rawpacer.readers._record import SETTLED
    from rawpacer.readers._record import Recorder as CRecorder
except ImportError:  # built without a C compiler: the Python twin records
    CRecorder = None  # type: ignore[assignment,misc]  # the class or None

READY, COLLECT, TAKE, RESULT, ERROR = "ready", "collect", "take", "result", "error"
BYTES_PER_DATAGRAM = 8 + 8 + 4 + 4
"""rx_ns int64, hash uint64, slot int32, length int32: the memfd's four arrays, in that order."""
MAX_DATAGRAM = 65536
"""Receive room per datagram: every UDP payload fits (65,507 bytes over IPv4, 65,527 over IPv6), so none is cut."""
COLLECT_CAP_S = 120.0
"""A collection never waits longer than this, whatever keeps arriving."""
RECORDERS = ("auto", "c", "python")
"""``ReplayReaders(recorder=...)``: the C loop (``readers._record``), its Python twin, or C when built."""


def resolve_recorder(recorder: str) -> str:
    """The recording loop that will run, ``"c"`` or ``"python"``; UsageError for a name not in
    RECORDERS or for ``"c"`` when ``readers._record`` was not built."""
    require(recorder in RECORDERS, f"recorder {recorder!r} is not allowed; use one of: {', '.join(RECORDERS)}")
    if recorder == "c" and CRecorder is None:
        raise UsageError("recorder 'c' is not allowed: rawpacer.readers._record is not built; use auto or python")
    if recorder == "auto":
        return "python" if CRecorder is None else "c"
    return recorder


class _Recorder:
    """The child's state: the sockets, the records (in C, or in the Python twin's arrays), the control socket."""

    def __init__(self, ctl: socket.socket, ip: str, count: int, first_port: int, rcvbuf: int, recorder: str) -> None:
        self.ctl = ctl
        socks, self.ports = sockets.bind(ip, count, first_port, rcvbuf)
        self.socks = socks
        self.keeper = rxstamp.open_reader(STAMP_KEEPER_IP, 0)
        sockets.set_timestamps(list(socks), True)
        self.fast = CRecorder([sock.fileno() for sock in socks], ctl.fileno()) if recorder == "c" else None
        self._clear()

    def _clear(self) -> None:
        self.rx, self.digest, self.slot, self.length = array("q"), array("Q"), array("i"), array("i")

    def drain(self, slot: int) -> int:
        """Read every datagram queued on one socket; return how many (the Python twin)."""
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

    def command(self) -> tuple[int, int, int] | None:
        """Read one command: a COLLECT's settle time in ns (at least 1), with the time it came and
        the deadline it sets (COLLECT_CAP_S on); a TAKE's (0, 0, 0), answered at once; None for a
        stop (the one other command ReaderSet's reaper sends) or a closed control socket."""
        size = self.ctl.recv_into(inbox := bytearray(protocol.COMMAND_BUFFER))
        if not size:
            return None
        msg = marshal.loads(inbox[:size])
        if msg[0] == TAKE:
            return 0, 0, 0
        if msg[0] != COLLECT:
            return None
        now = time.monotonic_ns()
        return max(1, int(msg[1] * 1e9)), now, now + int(COLLECT_CAP_S * 1e9)

    def serve(self) -> None:
        """Record until told to take (answered at once), collect (answered once settled) or stop."""
        if self.fast is not None:
            self._serve_c(self.fast)
            return
        poller = select.epoll()
        slot_of_fd = {sock.fileno(): slot for slot, sock in enumerate(self.socks)}
        for fd in (*slot_of_fd, self.ctl.fileno()):
            poller.register(fd, select.EPOLLIN)
        settle_ns = deadline = 0
        quiet_since = 0
        while True:
            timeout = -1.0 if not settle_ns else max(0.0, (quiet_since + settle_ns - time.monotonic_ns()) / 1e9)
            events = poller.poll(timeout)
            got = 0
            for fd, _ in events:
                slot = slot_of_fd.get(fd)
                if slot is not None:
                    got += self.drain(slot)
                    continue
                state = self.obey((settle_ns, quiet_since, deadline))
                if state is None:
                    return
                settle_ns, quiet_since, deadline = state
            now = time.monotonic_ns()
            if got:
                quiet_since = now
            if settle_ns and (now - quiet_since >= settle_ns or now >= deadline):
                self.report()
                settle_ns = 0

    def obey(self, state: tuple[int, int, int]) -> tuple[int, int, int] | None:
        """Read one command and return the collection it leaves open (settle ns, since, deadline): a
        take answered at once (``state`` as it was), a collection's own; None for a stop."""
        collect = self.command()
        if collect is None:
            return None
        if not collect[0]:
            self.report()
            return state
        return collect

    def _serve_c(self, fast: CRecorder) -> None:
        """``serve`` with the C loop: it records, and comes back for a command or a settled collection."""
        settle_ns = since = deadline = 0
        while True:
            if fast.run(settle_ns, since, deadline) == SETTLED:
                self.report()
                settle_ns = 0
                continue
            state = self.obey((settle_ns, since, deadline))
            if state is None:
                return
            settle_ns, since, deadline = state

    def _dump(self, fd: int) -> int:
        """The Python twin's records written to ``fd`` (the layout of ``BYTES_PER_DATAGRAM``), then
        cleared; how many."""
        count = len(self.rx)
        for values in (self.rx, self.digest, self.slot, self.length):
            view = memoryview(values).cast("B")
            while view:
                view = view[os.write(fd, view) :]
        self._clear()
        return count

    def report(self) -> None:
        """Send the records in a memfd, then start afresh."""
        drops = sum(sockets.drops(sock) for sock in self.socks)
        fd = os.memfd_create("rawpacer-replay", os.MFD_CLOEXEC)
        try:
            count = self._dump(fd) if self.fast is None else self.fast.dump(fd)
            socket.send_fds(self.ctl, [marshal.dumps((RESULT, count, drops))], [fd])
        finally:
            os.close(fd)


def child_main(
    ctl_fd: int, namespace: str, ip: str, count: int, first_port: int, rcvbuf: int, recorder: str
) -> NoReturn:
    """Entry of the recording process (``rawpacer.readers.spawn``): READY with the ports, or ERROR."""
    code = 1
    ctl = socket.socket(fileno=ctl_fd)
    try:
        gc.disable()  # no collector pauses while recording
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        keep_only(ctl_fd)
        if namespace:
            enter_namespace(namespace)
        state = _Recorder(ctl, ip, count, first_port, rcvbuf, recorder)
        ctl.send(marshal.dumps((READY, state.ports)))
        state.serve()
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
