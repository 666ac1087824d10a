"""``ReaderSet``: N kernel UDP readers in one reader process, checking what the writer delivers.

The seed's ``testInit`` + ``waitForReaders``, made fast and strict: the expected messages live in
shared memory the writer side fills; the reader process compares every datagram with its port's
slot and reports per op what was delivered, intact, corrupt, duplicate, lost or late, what its
sockets dropped, how busy it was and, when asked, every datagram's kernel receive timestamp.
"""

from __future__ import annotations

import array
import marshal
import mmap
import os
import signal
import socket
import time
import weakref
from dataclasses import astuple
from typing import Any, ClassVar, Self

from rawpacer.errors import RawpacerError, ReaderDied, UsageError, require
from rawpacer.headers.sequence import MAX_SEQUENCE
from rawpacer.kernel.sockbuf import set_buffer_size
from rawpacer.limits import FIRST_PORT, MAX_PORT, MAX_READERS
from rawpacer.messages import check_size
from rawpacer.readers import arrivals, process, protocol, spawn, states
from rawpacer.readers.core import PREFIX
from rawpacer.readers.starting import Starting
from rawpacer.readers.tally import OpResult, RunTally
from rawpacer.readers.tuning import ReaderTuning

RCVBUF_BUDGET = 256 << 20  # receive buffer shared out over the readers by default (memory only used when queued)
MIN_RCVBUF = 1 << 20
MAX_RCVBUF = 32 << 20
ANSWER_MARGIN_S = 10.0  # the reader process answers within its own deadline plus this, or is dead
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 1.0
CHILD_MAIN = "rawpacer.readers.process:child_main"


def _reap(pid: int, grace: float) -> int | None:
    """Wait up to ``grace`` seconds for ``pid`` to exit, then SIGKILL it; return its wait status."""
    deadline = time.monotonic() + grace
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return status
        if time.monotonic() >= deadline:
            break
        time.sleep(0.002)
    try:
        os.kill(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]
    except (ProcessLookupError, ChildProcessError):
        return None


def _stop_child(pid: int, ctl: socket.socket) -> None:
    """Ask the reader process to stop, reap it (killing it if it lingers), close the control socket."""
    try:
        ctl.send(protocol.encode_command(protocol.Stop()))
    except OSError:
        pass
    _reap(pid, STOP_GRACE_S)
    ctl.close()


def control_pair() -> tuple[socket.socket, socket.socket]:
    """The parent's and the reader process's ends of the control channel (SOCK_SEQPACKET: one message
    per send), with room for the largest RESULT."""
    ctl, child_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for end in (ctl, child_ctl):
        set_buffer_size(end, "snd", protocol.CONTROL_BUFFER)
        set_buffer_size(end, "rcv", protocol.CONTROL_BUFFER)
    return ctl, child_ctl


def auto_rcvbuf(count: int) -> int:
    """Default receive buffer per reader socket: a share of RCVBUF_BUDGET, 1-32 MiB.

    Few readers each take a whole stream, so they get deep buffers to ride out a preempted
    reader; 10,000 readers share the load and keep 1 MiB each.
    """
    return max(MIN_RCVBUF, min(MAX_RCVBUF, RCVBUF_BUDGET // count))


def _passed_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """File descriptors received with SCM_RIGHTS."""
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return list(fds)


def _describe_status(status: int | None) -> str:
    if status is None:
        return "already reaped"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class ReaderSet(Starting):
    """N reader sockets on ``topo.reader_ip`` (ports from 5001 up), served by one reader process.

    Per op: ``fill`` ``buffer`` (or ``messages``), ``begin()``, send, ``wait()``. Per stream:
    ``begin_stream()``, send many fan-outs of the same messages, ``end_stream(sent_per_port)``.
    ``rcvbuf`` is each socket's receive buffer in bytes (default ``auto_rcvbuf(count)``);
    ``tuning`` picks the receive loop (``ReaderTuning``; default: the C loop when built).
    """

    fill_ahead: ClassVar[bool] = True
    """An op's messages may be made during the op before and copied into ``buffer`` at its start
    (``OpLoop``): the readers check whatever ``buffer`` holds when ``begin()`` is called."""

    def __init__(
        self,
        topo: Any,
        count: int,
        message_size: int,
        *,
        timeout: float = 1.0,
        first_port: int = FIRST_PORT,
        rcvbuf: int | None = None,
        tuning: ReaderTuning | None = None,
    ) -> None:
        require(
            isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_READERS,
            f"reader count {count!r} is out of range 1-{MAX_READERS}",
        )
        check_size(message_size)
        require(
            isinstance(timeout, (int, float)) and timeout > 0,
            f"timeout {timeout!r} is not allowed; use a positive number of seconds",
        )
        require(
            isinstance(first_port, int) and 1 <= first_port <= MAX_PORT,
            f"first port {first_port!r} is out of range 1-{MAX_PORT}",
        )
        rcvbuf = auto_rcvbuf(count) if rcvbuf is None else rcvbuf
        require(
            isinstance(rcvbuf, int) and not isinstance(rcvbuf, bool) and rcvbuf > 0,
            f"rcvbuf {rcvbuf!r} is not allowed; use a positive number of bytes",
        )
        tuning = ReaderTuning() if tuning is None else tuning
        require(isinstance(tuning, ReaderTuning), f"tuning {tuning!r} is not allowed; use a ReaderTuning")
        self.count = count
        self.message_size = message_size
        self.timeout = float(timeout)
        self._closed = True
        shared_fd = os.memfd_create("rawpacer-readers", os.MFD_CLOEXEC)
        try:
            os.ftruncate(shared_fd, count * message_size)
            self._shared = mmap.mmap(shared_fd, count * message_size)
            ctl, child_ctl = control_pair()
            with child_ctl:
                args = (message_size, topo.reader_ns, topo.reader_ip, count, first_port, rcvbuf, astuple(tuning))
                pid = spawn.start(CHILD_MAIN, (child_ctl.fileno(), shared_fd), args)
        finally:
            os.close(shared_fd)
        self.pid = pid
        self.rcvbuf = rcvbuf
        self._spin_s = tuning.idle_spin_us / 1e6 if tuning.resolved_spin else 0.0
        self._ctl = ctl
        self._inbox = bytearray(protocol.CONTROL_BUFFER)
        self._finalizer = weakref.finalize(self, _stop_child, pid, ctl)
        self._closed = False
        self._machine = states.Machine()
        self._gone: str | None = None
        """Why the reader process is gone, once it is."""
        self._pending: tuple[int, float, bool] | None = None
        """The open op's or stream's (expected size, perf_counter at begin, timestamps)."""
        self._stamping = False
        """True once the reader process has the kernel stamping datagrams on arrival (``protocol.Stamp``)."""
        try:
            ready, _ = self._receive(protocol.READY, READY_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        self.ports: tuple[int, ...] = tuple(ready[1])
        self.loop: str = ready[2]
        """The receive loop the reader process runs: ``"c"`` or ``"python"``."""
        self._slot_of_port = {port: i for i, port in enumerate(self.ports)}
        self.buffer = memoryview(self._shared)
        self.messages = [self.buffer[i * message_size : (i + 1) * message_size] for i in range(count)]
        self.tally = RunTally(self.ports)

    # --- control channel ------------------------------------------------------------------

    @property
    def state(self) -> states.State:
        """Where the readers are (``rawpacer.readers.states``)."""
        return self._machine.state

    def _check(self, move: states.Move) -> None:
        """Refuse ``move`` unless the state table allows it: ReaderDied when the process is gone,
        UsageError when this set was closed, IllegalTransition otherwise."""
        if self._gone is not None:
            raise ReaderDied(self._gone)
        if self._closed:
            raise UsageError("this ReaderSet is closed")
        self._machine.check(move)

    def _send(self, command: protocol.Command) -> None:
        """Send ``command`` if the state table allows it, and make its move."""
        self._check(command)
        try:
            self._ctl.send(protocol.encode_command(command))
        except (BrokenPipeError, ConnectionResetError):
            raise self._died() from None
        self._machine.apply(command)

    def _poll_answer(self) -> tuple[int, list[tuple[int, int, bytes]]] | None:
        """Spin up to ``_spin_s`` for the reader's answer (a sleeping parent pays a wake-up); None if none came."""
        self._ctl.settimeout(0.0)
        end = time.monotonic() + self._spin_s
        while True:
            try:
                size, ancdata, _flags, _addr = self._ctl.recvmsg_into([self._inbox], socket.CMSG_SPACE(4))
            except BlockingIOError:
                if time.monotonic() >= end:
                    return None
                os.sched_yield()  # spinning: let a waiting task (the reader, on a busy machine) have the CPU
                continue
            return size, ancdata

    def _receive(
        self, kind: str, timeout: float, spin: bool = False, dropping: str | None = None
    ) -> tuple[tuple[Any, ...], list[int]]:
        """The next message (it must be ``kind``; one of kind ``dropping`` is read past) and any file
        descriptors passed with it."""
        try:
            answer = self._poll_answer() if spin and self._spin_s else None
            if answer is None:
                self._ctl.settimeout(timeout)
                size, ancdata, _flags, _addr = self._ctl.recvmsg_into([self._inbox], socket.CMSG_SPACE(4))
            else:
                size, ancdata = answer
        except TimeoutError:
            status = _reap(self.pid, 0)
            why = f"did not answer within {timeout:.1f} s and was killed ({_describe_status(status)})"
            raise self._lost(why) from None
        except ConnectionResetError:
            size = 0
        if size == 0:
            raise self._died()
        fds = _passed_fds(ancdata)
        msg: tuple[Any, ...] = marshal.loads(memoryview(self._inbox)[:size])
        if msg[0] == protocol.ERROR:
            _reap(self.pid, STOP_GRACE_S)
            self._lost(f"stopped after an error: {msg[1]}")
            raise RawpacerError(msg[1] if msg[2] else f"reader process failed: {msg[1]}")
        if msg[0] != kind:
            for fd in fds:
                os.close(fd)
            if msg[0] == dropping:
                return self._receive(kind, timeout)
            raise RawpacerError(f"reader process answered {msg[0]!r} where {kind!r} was expected")
        return msg, fds

    def _died(self) -> ReaderDied:
        status = _reap(self.pid, STOP_GRACE_S)
        return self._lost(f"died ({_describe_status(status)}) while the readers were still needed")

    def _lost(self, why: str) -> ReaderDied:
        """The reader process is gone (``why``): every later call raises ReaderDied saying so."""
        self._machine.state = states.State.CLOSED
        self._gone = f"reader process {self.pid} {why}"
        return ReaderDied(self._gone)

    # --- ops and streams ------------------------------------------------------------------

    def _start(
        self, stream: bool, expected_size: int | None, timestamps: bool, fanouts: int | None, shaped: bool
    ) -> None:
        size = self.message_size if expected_size is None else expected_size
        require(
            isinstance(size, int) and 1 <= size <= self.message_size,
            f"expected size {size!r} is out of range 1-{self.message_size} (the message size)",
        )
        require(timestamps in (True, False), f"timestamps {timestamps!r} is not allowed; use True or False")
        require(
            fanouts is None or (isinstance(fanouts, int) and 1 <= fanouts <= MAX_SEQUENCE),
            f"fanouts {fanouts!r} is not allowed; use None or 1-{MAX_SEQUENCE}",
        )
        timestamps = bool(timestamps)
        begin: protocol.Command = (
            protocol.BeginStream(size, timestamps, PREFIX if shaped else fanouts or 0)
            if stream
            else protocol.BeginOp(size, timestamps)
        )
        self._check(begin)
        if timestamps and not self._stamping:
            self._send(protocol.Stamp())  # the first time, wait until the kernel stamps on arrival
            self._receive(protocol.DONE, ANSWER_MARGIN_S)
            self._stamping = True
        self._send(begin)
        self._pending = (size, time.perf_counter(), timestamps)

    def _finish(
        self, sent: int, command: protocol.Wait | protocol.EndStream, answer_within: float, strict: bool
    ) -> OpResult:
        self._check(command)
        assert self._pending is not None  # an op or stream is open: the table allowed the command
        size, started, timestamps = self._pending
        called = time.perf_counter()
        self._send(command)
        msg, fds = self._receive(protocol.RESULT, answer_within + ANSWER_MARGIN_S, spin=True)
        done = time.perf_counter()
        self._machine.apply(states.Reported())
        self._pending = None
        mode = "op" if isinstance(command, protocol.Wait) else "stream"
        outcome = protocol.decode(msg)
        verdict = outcome.verdict
        got = None
        if fds:
            got = arrivals.read(fds[0], outcome.arrivals)
        elif timestamps:
            got = arrivals.empty()
        result = OpResult(
            mode=mode,
            readers=self.count,
            expected_size=size,
            per_port=verdict.per_port,
            sent=sent,
            counts=verdict.counts,
            timed_out=outcome.timed_out,
            reader_cpu_s=outcome.reader_cpu_s,
            wait_s=done - called,
            op_s=done - started,
            deviations={t.port: t for t in verdict.deviations},
            reader_busy_s=outcome.reader_busy_s,
            reader_checked=outcome.reader_checked,
            reader_first_ns=outcome.reader_first_ns,
            reader_last_ns=outcome.reader_last_ns,
            arrivals=got,
            sequenced=verdict.sequenced,
            lengths={n: (received, matching) for n, received, matching in verdict.lengths},
        )
        self.tally.add(result)
        return result.raise_for_loss() if strict else result

    def wait(self, sent: int | None = None, *, strict: bool = False, silence: float | None = None) -> OpResult:
        """End the op: return when every reader has a datagram or ``timeout`` s after this call.

        ``sent`` is what the writer reports (default: one per reader). ``strict`` raises
        DeliveryError naming the ports when anything was lost or corrupt. ``silence``: give up
        earlier, once no datagram has arrived for ``silence`` s (counted from the later of this
        call and the last arrival); the result then says ``timed_out`` as after ``timeout``.
        """
        sent = self.count if sent is None else sent
        require(
            silence is None or (isinstance(silence, (int, float)) and not isinstance(silence, bool) and silence > 0),
            f"silence {silence!r} is not allowed; use a positive number of seconds or None",
        )
        command = protocol.Wait(self.timeout, -1.0 if silence is None else float(silence))
        return self._finish(sent, command, self.timeout, strict)

    def end_stream(self, sent_per_port: int, settle: float = 0.2, *, strict: bool = False) -> OpResult:
        """End a stream of ``sent_per_port`` fan-outs: return once all arrived, or once no datagram
        came for ``settle`` s; what never arrived (e.g. overflowed receive buffers) is lost."""
        require(
            isinstance(sent_per_port, int) and sent_per_port >= 1,
            f"sent per port {sent_per_port!r} is not allowed; use 1 or more",
        )
        require(
            isinstance(settle, (int, float)) and settle > 0,
            f"settle {settle!r} is not allowed; use a positive number of seconds",
        )
        command = protocol.EndStream(sent_per_port, float(settle))
        return self._finish(sent_per_port * self.count, command, process.STREAM_CAP_S, strict)

    def close_port(self, port: int) -> None:
        """Test hook: the reader process closes ``port``'s socket; it then counts as lost every op."""
        require(port in self._slot_of_port, f"port {port!r} is not one of this ReaderSet's reader ports")
        self._send(protocol.ClosePort(self._slot_of_port[port]))
        self._receive(protocol.DONE, ANSWER_MARGIN_S)

    def abort(self) -> None:
        """Back to idle from any live state: an open op or stream is dropped, unreported and untallied
        (a RESULT already on its way is read and dropped). What a failed writer leaves behind is cleared."""
        if self._machine.state is states.State.IDLE:
            return
        self._send(protocol.Abort())
        self._pending = None
        self._receive(protocol.DONE, ANSWER_MARGIN_S, dropping=protocol.RESULT)

    # --- life cycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop (or kill) the reader process, reap it and release the shared memory. Safe twice."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()
        for view in getattr(self, "messages", ()):
            view.release()
        if hasattr(self, "buffer"):
            self.buffer.release()
        try:
            self._shared.close()
        except BufferError:
            pass  # someone still holds a view; the anonymous mapping goes with the last reference

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
