"""The reader process: every reader socket on one epoll, each datagram checked against shared memory.

It is forked by ``ReaderSet``, enters the readers' namespace, binds the sockets and then serves
commands from its control socket (``protocol`` below) while receiving, so it runs on the other
core while the writer sends. It never returns into the caller's code: it ends with ``os._exit``.
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
from typing import NoReturn

from rawpacer.kernel.sockbuf import set_buffer_size
from rawpacer.limits import MAX_PORT
from rawpacer.readers.nofile import ensure_nofile
from rawpacer.sandbox import enter_namespace

# Commands (parent -> child), each a marshalled tuple whose first item is one of these.
BEGIN, WAIT, END_STREAM, CLOSE_PORT, STOP = "begin", "wait", "end", "close", "stop"
# Replies (child -> parent).
READY, RESULT, DONE, ERROR = "ready", "result", "done", "error"

CONTROL_BUFFER = 16 << 20  # a result naming 10,000 deviating ports must fit in one message
COMMAND_BUFFER = 4096  # commands are a few small numbers
STREAM_CAP_S = 60.0  # a stream never waits longer than this after end_stream, whatever arrives
NEVER = 1 << 62


class ReaderLoop:
    """The state of the reader process: sockets, the shared expected messages, per-op counters."""

    def __init__(
        self, ctl: socket.socket, shared: mmap.mmap, slot: int, ip: str, count: int, first_port: int, rcvbuf: int
    ) -> None:
        self.ctl = ctl
        self.shared = shared
        self.slot = slot
        self.count = count
        self.epoll = select.epoll()
        self.epoll.register(ctl.fileno(), select.EPOLLIN)
        self.socks: list[socket.socket | None] = []
        self.ports: list[int] = []
        self.slot_of_fd: dict[int, int] = {}
        self._bind(ip, first_port, rcvbuf)
        self.late: dict[int, int] = {}
        self.inbox = bytearray(COMMAND_BUFFER)
        self.active = False
        self.finishing = False
        self.running = True
        # While an op is open, poll without sleeping when a core of our own is there to spin on:
        # every datagram then finds the reader awake, so neither side pays a wake-up per datagram.
        self.spin = len(os.sched_getaffinity(0)) >= 2

    def _bind(self, ip: str, port: int, rcvbuf: int) -> None:
        ensure_nofile(self.count)
        while len(self.socks) < self.count:
            if port > MAX_PORT:
                raise OSError(f"only {len(self.socks)} of {self.count} reader ports could be bound on {ip}")
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((ip, port))
            except OSError:
                sock.close()
                port += 1
                continue
            set_buffer_size(sock, "rcv", rcvbuf)
            sock.setblocking(False)
            self.slot_of_fd[sock.fileno()] = len(self.socks)
            self.epoll.register(sock.fileno(), select.EPOLLIN)
            self.socks.append(sock)
            self.ports.append(port)
            port += 1

    # --- commands -------------------------------------------------------------------------

    def command(self) -> None:
        """Handle one command from the parent (begin, wait, end, close, stop)."""
        size = self.ctl.recv_into(self.inbox)
        if not size:
            self.running = False
            return
        msg = marshal.loads(self.inbox[:size])
        kind = msg[0]
        if kind == BEGIN:
            self._begin(msg[1], msg[2])
        elif kind == WAIT:
            self.per_port_set(1)
            self._finish_after(msg[1], silence=False)
        elif kind == END_STREAM:
            self.per_port_set(msg[1])
            self._finish_after(msg[2], silence=True)
        elif kind == CLOSE_PORT:
            self._close_slot(msg[1])
            self.ctl.send(marshal.dumps((DONE,)))
        elif kind == STOP:
            self.running = False

    def _begin(self, expected_size: int, stream: bool) -> None:
        n = self.count
        self.expected_size = expected_size
        self.received = [0] * n
        self.bad = [0] * n
        self.expected: list[bytes | None] = [None] * n
        self.corrupt_slots: set[int] = set()
        self.over_slots: set[int] = set()
        self.reached = 0
        self.per_port = NEVER if stream else 1
        self.stream = stream
        self.op_late = self.late
        self.late = {}
        self.cpu0 = time.process_time()
        self.active = True
        self.finishing = False

    def per_port_set(self, per_port: int) -> None:
        """Fix how many datagrams each port expects (known only at the end of a stream)."""
        if self.per_port == per_port:
            return
        self.per_port = per_port
        received = self.received
        self.reached = sum(1 for r in received if r >= per_port)
        self.over_slots = {i for i, r in enumerate(received) if r > per_port}

    def _finish_after(self, seconds: float, silence: bool) -> None:
        self.finishing = True
        self.silence = silence
        self.wait_s = seconds
        self.draining = True
        now = time.monotonic()
        self.deadline = now + seconds
        self.last_arrival = now
        self.hard_deadline = now + (STREAM_CAP_S if silence else seconds)

    def _close_slot(self, slot: int) -> None:
        sock = self.socks[slot]
        if sock is not None:
            self.epoll.unregister(sock.fileno())
            del self.slot_of_fd[sock.fileno()]
            sock.close()
            self.socks[slot] = None

    # --- receiving ------------------------------------------------------------------------

    def receive(self, fd: int) -> None:
        """Take one datagram from ``fd`` (level-triggered epoll reports it again if more wait)."""
        i = self.slot_of_fd.get(fd)
        if i is None:
            return  # closed by a command handled earlier in the same batch of events
        if not self.active:
            try:
                self.socks[i].recv(1)
            except BlockingIOError:
                return
            self.late[i] = self.late.get(i, 0) + 1
            return
        try:
            data = self.socks[i].recv(self.expected_size + 1)
        except BlockingIOError:
            return
        expected = self.expected[i]
        if expected is None:
            start = i * self.slot
            expected = self.expected[i] = self.shared[start : start + self.expected_size]
        received = self.received[i] = self.received[i] + 1
        if received == self.per_port:
            self.reached += 1
        elif received > self.per_port:
            self.over_slots.add(i)
        if data != expected:
            self.bad[i] += 1
            self.corrupt_slots.add(i)

    def poll_timeout(self) -> float:
        """How long the next epoll may block: 0 while spinning or draining, the deadline otherwise."""
        if self.active and self.spin:
            return 0
        if not self.finishing:
            return -1
        if self.draining:
            return 0
        end = self.last_arrival + self.wait_s if self.silence else self.deadline
        return max(0.0, min(end, self.hard_deadline) - time.monotonic())

    def run(self) -> None:
        """Serve commands and receive datagrams until told to stop or the parent goes away."""
        ctl_fd = self.ctl.fileno()
        poll = self.epoll.poll
        maxevents = min(self.count + 1, 1024)
        while self.running:
            events = poll(self.poll_timeout(), maxevents)
            arrived = False
            for fd, _ in events:
                if fd == ctl_fd:
                    self.command()
                else:
                    arrived = True
                    self.receive(fd)
            if self.finishing:
                self._maybe_finish(arrived)

    def _maybe_finish(self, arrived: bool) -> None:
        now = time.monotonic()
        if arrived:
            self.last_arrival = now
            self.draining = True
            return  # drain until a poll finds nothing more, then decide
        self.draining = False
        if self.reached == self.count:
            self._report(timed_out=False)
            return
        end = self.last_arrival + self.wait_s if self.silence else self.deadline
        if now >= min(end, self.hard_deadline):
            self._report(timed_out=not self.silence)

    def _report(self, timed_out: bool) -> None:
        per_port = self.per_port
        received, bad = self.received, self.bad
        slots = self.corrupt_slots | self.over_slots | set(self.op_late)
        lost = 0
        if self.reached < self.count:
            short = [i for i, r in enumerate(received) if r < per_port]
            lost = sum(per_port - received[i] for i in short)
            slots.update(short)
        deviations = []
        duplicate = 0
        for i in sorted(slots):
            r, c = received[i], bad[i]
            m = r - c
            dup = max(0, m - per_port)
            duplicate += dup
            deviations.append(
                (self.ports[i], r, min(m, per_port), c, dup, max(0, per_port - r), self.op_late.get(i, 0))
            )
        total = sum(received)
        corrupt = sum(bad)
        intact = total - corrupt - duplicate
        cpu = time.process_time() - self.cpu0
        late = sum(self.op_late.values())
        self.ctl.send(
            marshal.dumps((RESULT, per_port, total, intact, corrupt, duplicate, lost, late, timed_out, cpu, deviations))
        )
        self.active = False
        self.finishing = False
        self.expected = []


def child_main(
    ctl: socket.socket, shared: mmap.mmap, slot: int, namespace: str, ip: str, count: int, first_port: int, rcvbuf: int
) -> NoReturn:
    """Entry of the forked reader process; reports READY (with the ports) or ERROR, then serves."""
    code = 1
    try:
        gc.disable()  # objects inherited from the parent must never be finalised here
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        keep = ctl.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 20)
        enter_namespace(namespace)
        loop = ReaderLoop(ctl, shared, slot, ip, count, first_port, rcvbuf)
        ctl.send(marshal.dumps((READY, loop.ports)))
        loop.run()
        code = 0
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        try:
            ctl.send(marshal.dumps((ERROR, detail)))
        except OSError:
            pass
    finally:
        os._exit(code)
