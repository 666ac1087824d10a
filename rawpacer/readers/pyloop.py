"""The pure-Python socket loop around the reference counter: the fallback when ``rawpacer._readloop``
is not built, and the other half of the agreement tests. ``rawpacer._readloop.Counter.run`` is its
C twin; both follow the same rules (see ``PyLoop.run``).
"""

from __future__ import annotations

import os
import select
import socket
import time

from rawpacer.kernel.timestamping import TIMESPEC, timestamp_ns
from rawpacer.readers.core import NEVER, Buffer, Counter, Tallies
from rawpacer.readers.tuning import POLL_OP, SPIN

# Why run() returned (the C loop exports the same numbers).
COMMAND, COMPLETE, DEADLINE, SILENCE = 0, 1, 2, 3
MAX_EVENTS = 1024
_CMSG_ROOM = socket.CMSG_SPACE(TIMESPEC.size)


class PyLoop(Counter):
    """The reference counter plus an epoll loop over the reader sockets, in Python."""

    def __init__(self, expected: Buffer, slot_size: int, slots: int) -> None:
        super().__init__(expected, slot_size, slots)
        self._restart_counts()

    def attach(
        self, socks: list[socket.socket], ctl_fd: int, batch: int, spin: int, linger_ns: int, idle_spin_ns: int
    ) -> None:
        """Watch ``socks[i]`` for slot i and the control socket ``ctl_fd``; ``spin`` is a
        ``tuning`` mode (SLEEP, SPIN or POLL_OP)."""
        self._epoll = select.epoll()
        self._epoll.register(ctl_fd, select.EPOLLIN)
        self._ctl_fd = ctl_fd
        self._slot_of_fd = {}
        self._socks = {}
        for slot, sock in enumerate(socks):
            self._epoll.register(sock.fileno(), select.EPOLLIN)
            self._slot_of_fd[sock.fileno()] = slot
            self._socks[slot] = sock
        self._batch = batch
        self._spin = spin
        self._linger_s = linger_ns / 1e9
        self._idle_spin_ns = idle_spin_ns
        self._spin_until = 0

    def detach(self, slot: int) -> None:
        """Stop watching ``slot``'s socket (the caller closes it)."""
        sock = self._socks.pop(slot)
        self._epoll.unregister(sock.fileno())
        del self._slot_of_fd[sock.fileno()]

    def begin(self, expected_size: int, stream: bool, timestamps: bool, sequences: int = 0) -> None:
        """Open an op (``Counter.begin``) and restart the busy-time count."""
        super().begin(expected_size, stream, timestamps, sequences)
        self._restart_counts()

    def _restart_counts(self) -> None:
        """Zero what the loop counts per op: busy time, datagrams checked, first and last take."""
        self.busy_ns = 0
        self.checked = 0
        self.first_take_ns = 0
        self.last_take_ns = 0

    def tallies(self) -> Tallies:
        """Close the op (``Counter.tallies``); spin ``idle_spin_ns`` before sleeping between ops."""
        self._spin_until = time.monotonic_ns() + self._idle_spin_ns
        return super().tallies()

    def _drain(self, slot: int) -> int:
        sock = self._socks.get(slot)
        if sock is None:
            return 0
        stamped = self.active and self.timestamps
        size = self.slot_size + 1  # one byte more than any expected size: a longer datagram shows
        got = 0
        for _ in range(self._batch):
            try:
                if stamped:
                    data, ancdata, _flags, _addr = sock.recvmsg(size, _CMSG_ROOM)
                    self.datagram(slot, data, timestamp_ns(ancdata) or 0)
                else:
                    self.datagram(slot, sock.recv(size))
            except BlockingIOError:
                break
            got += 1
        return got

    def run(self, finishing: bool, deadline_ns: int, silence_ns: int, since_ns: int) -> int:
        """Receive until a command arrives (COMMAND) or, when ``finishing``, the op ends.

        Finishing: drain what is ready, then COMPLETE once every slot has ``per_port`` datagrams,
        DEADLINE at ``deadline_ns``, or SILENCE once nothing arrived for ``silence_ns`` since the
        later of ``since_ns`` and the last arrival. Negative times mean none; CLOCK_MONOTONIC ns.
        """
        draining = finishing
        maxevents = min(self.slots + 1, MAX_EVENTS)
        while True:
            end = NEVER
            if finishing:
                if deadline_ns >= 0:
                    end = deadline_ns
                if silence_ns >= 0:
                    end = min(end, max(self.last_take_ns, since_ns) + silence_ns)
            # POLL_OP: the op's first datagram woke the loop; the rest follow within the op, so poll
            polling = self.active and (
                self._spin == SPIN or (self._spin == POLL_OP and self.first_take_ns > 0 and not self.complete)
            )
            if polling or draining:
                timeout = 0.0
            elif not finishing:  # between ops, keep spinning a little: the next op finds the reader awake
                timeout = 0.0 if self._spin == SPIN and time.monotonic_ns() < self._spin_until else -1.0
            elif end == NEVER:
                timeout = -1.0  # finishing with neither deadline nor silence: until complete
            else:
                timeout = max(0.0, (end - time.monotonic_ns()) / 1e9)
            events = self._epoll.poll(timeout, maxevents)
            if not events and timeout == 0 and not draining:
                os.sched_yield()  # spinning: let a waiting task have the CPU
            if any(fd == self._ctl_fd for fd, _ in events):
                return COMMAND  # before the datagrams beside it: after a BEGIN they belong to the op
            t1 = time.thread_time_ns()  # busy time is CPU time: preemption is not charged
            taking = time.monotonic_ns() if events and self.active and not self.first_take_ns else 0
            got = 0
            for fd, _ in events:
                got += self._drain(self._slot_of_fd.get(fd, -1))
            if got and self.active:
                self.busy_ns += time.thread_time_ns() - t1
                self.checked += got
                self.last_take_ns = time.monotonic_ns()
                self.first_take_ns = self.first_take_ns or taking
            if finishing:
                if got:
                    draining = True  # drain until a poll finds nothing more, then decide
                    continue
                draining = False
                if self.complete:
                    return COMPLETE
                now = time.monotonic_ns()
                if 0 <= deadline_ns <= now:
                    return DEADLINE
                if now >= end:
                    return SILENCE
            elif got and self.active and self._linger_s:
                time.sleep(self._linger_s)  # let datagrams queue so the next batches are bigger
