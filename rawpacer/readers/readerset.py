"""``ReaderSet``: N kernel UDP readers in one forked process, checking what the writer delivers.

The seed's ``testInit`` + ``waitForReaders``, made fast and strict: the expected messages live in
shared memory the writer side fills; the reader process compares every datagram with its port's
slot and reports per op what was delivered, intact, corrupt, duplicate, lost or late.
"""

from __future__ import annotations

import marshal
import mmap
import os
import signal
import socket
import time
import weakref
from typing import Any, Self

from rawpacer.errors import RawpacerError, ReaderDied, UsageError, require
from rawpacer.kernel.sockbuf import set_buffer_size
from rawpacer.limits import FIRST_PORT, MAX_PORT, MAX_READERS
from rawpacer.messages import check_size
from rawpacer.readers import process
from rawpacer.readers.tally import OpResult, PortTally, RunTally

DEFAULT_RCVBUF = 1 << 20
ANSWER_MARGIN_S = 10.0  # the reader process answers within its own deadline plus this, or is dead
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 1.0


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
        ctl.send(marshal.dumps((process.STOP,)))
    except OSError:
        pass
    _reap(pid, STOP_GRACE_S)
    ctl.close()


def _describe_status(status: int | None) -> str:
    if status is None:
        return "already reaped"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class ReaderSet:
    """N reader sockets on ``topo.reader_ip`` (ports from 5001 up), served by one reader process.

    Per op: ``fill`` ``buffer`` (or ``messages``), ``begin()``, send, ``wait()``. Per stream:
    ``begin_stream()``, send many fan-outs of the same messages, ``end_stream(sent_per_port)``.
    """

    def __init__(
        self,
        topo: Any,
        count: int,
        message_size: int,
        *,
        timeout: float = 1.0,
        first_port: int = FIRST_PORT,
        rcvbuf: int = DEFAULT_RCVBUF,
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
        self.count = count
        self.message_size = message_size
        self.timeout = float(timeout)
        self._closed = True
        self._shared = mmap.mmap(-1, count * message_size)
        ctl, child_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (ctl, child_ctl):
            set_buffer_size(end, "snd", process.CONTROL_BUFFER)
            set_buffer_size(end, "rcv", process.CONTROL_BUFFER)
        pid = os.fork()
        if pid == 0:
            ctl.close()
            process.child_main(
                child_ctl, self._shared, message_size, topo.reader_ns, topo.reader_ip, count, first_port, rcvbuf
            )
        child_ctl.close()
        self.pid = pid
        self._ctl = ctl
        self._inbox = bytearray(process.CONTROL_BUFFER)
        self._finalizer = weakref.finalize(self, _stop_child, pid, ctl)
        self._closed = False
        self._pending: tuple[str, int, float] | None = None
        try:
            self.ports: tuple[int, ...] = tuple(self._receive(process.READY, READY_TIMEOUT_S)[1])
        except BaseException:
            self.close()
            raise
        self._slot_of_port = {port: i for i, port in enumerate(self.ports)}
        self.buffer = memoryview(self._shared)
        self.messages = [self.buffer[i * message_size : (i + 1) * message_size] for i in range(count)]
        self.tally = RunTally(self.ports)

    # --- control channel ------------------------------------------------------------------

    def _send(self, *msg: object) -> None:
        if self._closed:
            raise UsageError("this ReaderSet is closed")
        try:
            self._ctl.send(marshal.dumps(msg))
        except (BrokenPipeError, ConnectionResetError):
            raise self._died() from None

    def _receive(self, kind: str, timeout: float) -> tuple:
        self._ctl.settimeout(timeout)
        try:
            size = self._ctl.recv_into(self._inbox)
        except TimeoutError:
            status = _reap(self.pid, 0)
            raise ReaderDied(
                f"reader process {self.pid} did not answer within {timeout:.1f} s and was killed ({_describe_status(status)})"
            ) from None
        except ConnectionResetError:
            size = 0
        if size == 0:
            raise self._died()
        msg = marshal.loads(memoryview(self._inbox)[:size])
        if msg[0] == process.ERROR:
            _reap(self.pid, STOP_GRACE_S)
            raise RawpacerError(f"reader process failed: {msg[1]}")
        if msg[0] != kind:
            raise RawpacerError(f"reader process answered {msg[0]!r} where {kind!r} was expected")
        return msg

    def _died(self) -> ReaderDied:
        status = _reap(self.pid, STOP_GRACE_S)
        return ReaderDied(
            f"reader process {self.pid} died ({_describe_status(status)}) while the readers were still needed"
        )

    # --- ops and streams ------------------------------------------------------------------

    def _start(self, mode: str, expected_size: int | None) -> None:
        size = self.message_size if expected_size is None else expected_size
        require(
            isinstance(size, int) and 1 <= size <= self.message_size,
            f"expected size {size!r} is out of range 1-{self.message_size} (the message size)",
        )
        if self._pending is not None:
            raise UsageError(f"a {self._pending[0]} is already running: call wait()/end_stream() first")
        self._send(process.BEGIN, size, mode == "stream")
        self._pending = (mode, size, time.perf_counter())

    def begin(self, expected_size: int | None = None) -> None:
        """Start one op: the readers expect one datagram each, equal to (the first ``expected_size``
        bytes of) their slot in ``messages``. Call before sending; the readers start at once."""
        self._start("op", expected_size)

    def begin_stream(self, expected_size: int | None = None) -> None:
        """Start a stream: many fan-outs of the same ``messages`` until ``end_stream``."""
        self._start("stream", expected_size)

    def _finish(self, mode: str, sent: int, command: tuple, answer_within: float, strict: bool) -> OpResult:
        if self._pending is None or self._pending[0] != mode:
            raise UsageError(f"no {mode} is running: call {'begin' if mode == 'op' else 'begin_stream'}() first")
        _, size, started = self._pending
        called = time.perf_counter()
        self._send(*command)
        msg = self._receive(process.RESULT, answer_within + ANSWER_MARGIN_S)
        done = time.perf_counter()
        self._pending = None
        per_port, delivered, intact, corrupt, duplicate, lost, late, timed_out, cpu, deviations = msg[1:]
        result = OpResult(
            mode=mode,
            readers=self.count,
            expected_size=size,
            per_port=per_port,
            sent=sent,
            delivered=delivered,
            intact=intact,
            corrupt=corrupt,
            duplicate=duplicate,
            lost=lost,
            late=late,
            timed_out=timed_out,
            reader_cpu_s=cpu,
            wait_s=done - called,
            op_s=done - started,
            deviations={d[0]: PortTally(*d) for d in deviations},
        )
        self.tally.add(result)
        return result.raise_for_loss() if strict else result

    def wait(self, sent: int | None = None, *, strict: bool = False) -> OpResult:
        """End the op: return when every reader has a datagram or ``timeout`` s after this call.

        ``sent`` is what the writer reports (default: one per reader). ``strict`` raises
        DeliveryError naming the ports when anything was lost or corrupt.
        """
        sent = self.count if sent is None else sent
        return self._finish("op", sent, (process.WAIT, self.timeout), self.timeout, strict)

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
        command = (process.END_STREAM, sent_per_port, float(settle))
        return self._finish("stream", sent_per_port * self.count, command, process.STREAM_CAP_S, strict)

    def close_port(self, port: int) -> None:
        """Test hook: the reader process closes ``port``'s socket; it then counts as lost every op."""
        require(port in self._slot_of_port, f"port {port!r} is not one of this ReaderSet's reader ports")
        if self._pending is not None:
            raise UsageError("close_port() is only allowed between ops")
        self._send(process.CLOSE_PORT, self._slot_of_port[port])
        self._receive(process.DONE, ANSWER_MARGIN_S)

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
