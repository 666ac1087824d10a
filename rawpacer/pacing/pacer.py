"""The one pacer every writer's stream loop uses: ``wait(i)`` returns when departure i is due.

Departure i is due at ``anchor + schedule.offset_ns(i)`` on the monotonic clock, computed from i,
so no error accumulates. The pacer sleeps while the deadline is more than ``spin_ns`` away and
spins for the last stretch. Two rules keep a late pacer honest:

- catch up without bursts: a departure leaves no sooner after the previous one than its
  scheduled gap divided by ``catch_up`` (1.25 by default, the headroom the issue asks of a writer),
  so a pacer that fell behind (an interrupt, a vCPU exit, a scheduler slice) runs at most 1.25x
  the rate until it is back on schedule, never in a burst, and the stream keeps its rate;
- a stall is not caught up: a departure found ``stall_ns`` or more past its time (20 ms, or one
  whole gap if that is longer: more than a few 4 ms scheduler slices) leaves at once, the
  schedule is re-anchored so that it is due now (later departures keep their spacing), and the
  stall is counted with its lateness.

Every departure's lateness and the time the pacer spent awake in its waits (spinning: its CPU
time, or an upper bound of it when the kernel preempted the thread) are recorded for ``report()``.

    pacer = Pacer(ConstantSchedule(10_000))
    for i in range(n):
        pacer.wait(i)              # pacer.last_ns: when it returned
        writer.send_part(...)

``PacedSender`` runs the same loop, sends included, in C with the GIL released, for sockets that
send prebuilt frames (``sendto`` to prebuilt addresses, or ``send`` on a connected or bound one).
"""

from __future__ import annotations

import math
import os
import socket
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rawpacer.errors import require
from rawpacer.pacing.clock import DEFAULT_SPIN_NS, IMPLEMENTATION, Clock, MonotonicClock
from rawpacer.pacing.schedule import Schedule
from rawpacer.pacing.stats import percentiles

LATENESS_SAMPLES = 1 << 24
"""Departures whose lateness is kept for the percentiles (128 MiB); later ones count for the max only."""

DEFAULT_STALL_NS = 20_000_000
"""Lateness from which a departure is a stall, not caught up (20 ms: five 4 ms scheduler slices at 250 Hz)."""

DEFAULT_CATCH_UP = 1.25
"""How much faster than the schedule a late pacer may run (gaps no shorter than 1/1.25 of theirs):
the headroom issue 12 asks of a writer (an unpaced rate of at least 1.25x the target)."""

START_LEAD_NS = 100_000
"""How far ahead of the start the first departure is due (100 µs): it is then waited for like
every other, instead of leaving late by the time it takes to get going."""

NEVER = -(1 << 62)
"""The previous departure's time before the first one."""

NO_OFFSET = -(1 << 63)
"""The previous departure's offset before the first one (INT64_MIN, as _pace.c reads it)."""

CHUNK_NS = 100_000_000
"""Schedule time one call into the C loop covers at most (100 ms), so Ctrl-C is seen that often."""

CHUNK_DEPARTURES = 65_536
"""Departures one call into the C loop makes at most."""

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class PacerReport:
    """What a pacer did: departures, stalls, its own CPU time, and how late departures left (ns)."""

    departures: int
    stalls: int
    stalled_ns: int
    cpu_ns: int
    lateness_ns: dict[str, int | None]
    spin_ns: int
    stall_ns: int
    catch_up: float
    implementation: str

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready fields (the stream result's ``pacer`` entry)."""
        return {
            "departures": self.departures,
            "stalls": self.stalls,
            "stalled_ns": self.stalled_ns,
            "cpu_ns": self.cpu_ns,
            "lateness_ns": dict(self.lateness_ns),
            "spin_ns": self.spin_ns,
            "stall_ns": self.stall_ns,
            "catch_up": self.catch_up,
            "implementation": self.implementation,
        }


class Pacer:
    """Holds a stream to ``schedule``; ``wait(i)`` for i = 0, 1, ... returns when departure i is due.

    It is the op loop's ``Departures`` (rawpacer.bench.oploop): ``burst``, ``start()``, ``wait(i)``.
    """

    def __init__(
        self,
        schedule: Schedule,
        *,
        spin_ns: int = DEFAULT_SPIN_NS,
        stall_ns: int | None = None,
        catch_up: float = DEFAULT_CATCH_UP,
        clock: Clock | None = None,
    ) -> None:
        if stall_ns is None:
            stall_ns = max(DEFAULT_STALL_NS, math.ceil(schedule.period_ns))
        for name, value, low in (("spin_ns", spin_ns, 0), ("stall_ns", stall_ns, 1)):
            require(
                isinstance(value, int) and not isinstance(value, bool) and value >= low,
                f"{name} {value!r} is not allowed; use {low} or more nanoseconds",
            )
        require(
            isinstance(catch_up, (int, float)) and not isinstance(catch_up, bool) and catch_up >= 1,
            f"catch_up {catch_up!r} is not allowed; use 1 (never faster) or more, inf for bursts",
        )
        self.schedule = schedule
        self.spin_ns = spin_ns
        self.stall_ns = stall_ns
        """Lateness from which a departure is a stall and re-anchors the schedule."""
        self.catch_up = float(catch_up)
        """How much faster than the schedule a late pacer may run."""
        self.gap_ppm = round(1_000_000 / self.catch_up)
        """A late departure's shortest gap, in millionths of its scheduled one (1/catch_up)."""
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.implementation = getattr(self.clock, "implementation", "custom")
        self._now = self.clock.now
        self._wait_until = self.clock.wait_until
        self._offset = schedule.offset_ns
        self.anchor_ns: int | None = None
        """When departure 0 is (or would have been) due, after any re-anchoring; None before the start."""
        self.last_ns = NEVER
        """When the previous departure left."""
        self.prev_offset_ns = NO_OFFSET
        """The previous departure's offset in the schedule."""
        self.next_departure = 0
        self.departures = 0
        self.stalls = 0
        self.stalled_ns = 0
        self.busy_ns = 0
        self._late = array("q")
        self._late_overflow_max = 0

    @property
    def burst(self) -> int:
        """Datagrams that leave together at each departure (the schedule's)."""
        return self.schedule.burst

    def start(self, t0_ns: int | None = None) -> None:
        """Anchor departure 0 at ``t0_ns`` (default: START_LEAD_NS from now); else the first ``wait`` does."""
        self.anchor_ns = self._now() + START_LEAD_NS if t0_ns is None else int(t0_ns)

    def _anchor_at(self, departure: int) -> int:
        """Anchor the schedule so that ``departure`` is due START_LEAD_NS from now (a first wait)."""
        self.anchor_ns = self._now() + START_LEAD_NS - self._offset(departure)
        return self.anchor_ns

    def wait(self, departure: int) -> None:
        """Return when departure number ``departure`` is due (``last_ns``: the time it returned); never back.

        Never sooner after the previous departure than its scheduled gap / ``catch_up``. Late by
        ``stall_ns`` or more: at once, re-anchoring the schedule and counting a stall.
        """
        offset = self._offset(departure)
        anchor = self.anchor_ns if self.anchor_ns is not None else self._anchor_at(departure)
        due = anchor + offset
        entry = self._now()
        late = entry - due
        if late >= self.stall_ns:
            self.stalls += 1
            self.stalled_ns += late
            self.anchor_ns = anchor + late
            now = entry
        else:
            target = due
            if self.prev_offset_ns != NO_OFFSET:
                target = max(due, self.last_ns + (offset - self.prev_offset_ns) * self.gap_ppm // 1_000_000)
            now, slept = self._wait_until(target, self.spin_ns)
            self.busy_ns += now - entry - slept
            late = now - due
        self.last_ns = now
        self.prev_offset_ns = offset
        self.next_departure = departure + 1
        self.departures += 1
        if self.departures <= LATENESS_SAMPLES:
            self._late.append(late)
        elif late > self._late_overflow_max:
            self._late_overflow_max = late

    def _record_many(self, late: np.ndarray) -> None:
        room = max(0, LATENESS_SAMPLES - len(self._late))
        self._late.frombytes(late[:room].astype(np.int64).tobytes())
        if late.size > room:
            self._late_overflow_max = max(self._late_overflow_max, int(late[room:].max()))
        self.departures += int(late.size)

    def lateness(self) -> np.ndarray:
        """How late each recorded departure left, in ns (the first LATENESS_SAMPLES departures)."""
        return np.frombuffer(self._late, dtype=np.int64) if self._late else np.zeros(0, dtype=np.int64)

    def report(self) -> PacerReport:
        """Departures, stalls, the pacer's CPU time (awake in its waits) and lateness p50/p99/max."""
        lateness: dict[str, int | None] = percentiles(self.lateness(), ("p50", "p99", "max"))
        if self.departures > LATENESS_SAMPLES:
            lateness["max"] = max(int(lateness["max"] or 0), self._late_overflow_max)
        return PacerReport(
            departures=self.departures,
            stalls=self.stalls,
            stalled_ns=self.stalled_ns,
            cpu_ns=self.busy_ns,
            lateness_ns=lateness,
            spin_ns=self.spin_ns,
            stall_ns=self.stall_ns,
            catch_up=self.catch_up,
            implementation=self.implementation,
        )


AF_INET_NATIVE = int(socket.AF_INET).to_bytes(2, "little" if np.little_endian else "big")
"""``sin_family`` as ``struct sockaddr_in`` holds it: host byte order."""


def sockaddr_in(ip: str, port: int) -> bytes:
    """``struct sockaddr_in`` for ``ip``:``port`` (family in host order, port and address in network order)."""
    return AF_INET_NATIVE + port.to_bytes(2, "big") + socket.inet_aton(ip) + bytes(8)


class PacedSender:
    """A whole paced stream of prebuilt frames from one socket, the departure loop in C.

    Datagram k is ``frames[k % len(frames)]``, sent to ``addresses[same index]`` (``(ip, port)``
    pairs, IPv4) or, with no addresses, on the connected or bound socket (UDP, AF_PACKET). Each
    departure of ``pacer`` sends ``pacer.schedule.burst`` of them (one ``sendmmsg`` for more than
    one). Without the C extension (or with ``implementation="python"``) the same loop runs in Python
    on ``pacer.wait``. ``sent`` counts what left, also after a Ctrl-C.
    """

    def __init__(
        self,
        pacer: Pacer,
        sock: socket.socket,
        frames: Sequence[Buffer],
        addresses: Sequence[tuple[str, int]] | None = None,
        *,
        implementation: str | None = None,
    ) -> None:
        require(len(frames) > 0, "frames is empty; give at least one frame")
        require(
            addresses is None or len(addresses) == len(frames),
            f"{len(addresses or ())} addresses for {len(frames)} frames; give one address per frame or none",
        )
        self.pacer = pacer
        self.sock = sock
        self.frames = list(frames)
        self.addresses = list(addresses) if addresses is not None else None
        self.implementation = implementation or IMPLEMENTATION
        self._sockaddrs = [sockaddr_in(ip, port) for ip, port in self.addresses] if self.addresses else None
        self.sent = 0
        if self.implementation == "c":
            pacer.implementation = "c-loop"

    def send(self, count: int) -> int:
        """Send ``count`` more datagrams on the pacer's schedule; return how many left (all of them)."""
        require(isinstance(count, int) and count >= 0, f"count {count!r} is not allowed; use 0 or more")
        if self.implementation == "c":
            return self._send_c(count)
        return self._send_python(count)

    def _send_python(self, count: int) -> int:
        pacer, burst, frames, n = self.pacer, self.pacer.schedule.burst, self.frames, len(self.frames)
        send, sendto, addresses = self.sock.send, self.sock.sendto, self.addresses
        goal = self.sent + count
        i = pacer.next_departure
        while self.sent < goal:
            pacer.wait(i)
            for _ in range(min(burst, goal - self.sent)):
                k = self.sent % n
                # Counted first: a signal's exception is raised as a call returns, so after the send.
                self.sent += 1
                try:
                    if addresses is None:
                        send(frames[k])
                    else:
                        sendto(frames[k], addresses[k])
                except OSError:
                    self.sent -= 1
                    raise
            i += 1
        return count

    def _send_c(self, count: int) -> int:
        from rawpacer._pace import send_paced

        pacer, schedule = self.pacer, self.pacer.schedule
        if pacer.anchor_ns is None:
            pacer._anchor_at(pacer.next_departure)
        per_chunk = int(min(CHUNK_DEPARTURES, max(1, CHUNK_NS // max(1, int(schedule.period_ns)))))
        late = np.empty(per_chunk, dtype=np.int64)
        fd = self.sock.fileno()
        goal = self.sent + count
        while self.sent < goal:
            left = goal - self.sent
            offsets = schedule.offsets(pacer.next_departure, min(per_chunk, schedule.departures(left)))
            head = [pacer.anchor_ns, pacer.last_ns, pacer.prev_offset_ns, pacer.spin_ns, pacer.stall_ns, pacer.gap_ppm]
            state = np.array([*head, schedule.burst, 0, 0, 0, 0, 0], dtype=np.int64)
            try:
                err, _ = send_paced(fd, self.frames, self._sockaddrs, offsets, late, state, self.sent, left)
            finally:  # also when Ctrl-C's KeyboardInterrupt is raised as the call returns
                self._absorb(state, late)
            if err:
                raise OSError(err, f"paced send failed after {self.sent} datagrams: {os.strerror(err)}")
            # A signal cut a sleep short: going round lets Python run its handler.
        return count

    def _absorb(self, state: np.ndarray, late: np.ndarray) -> None:
        """Take what one C call did (its state array, see _pace.c) into the pacer's record."""
        pacer = self.pacer
        anchor, last, prev_offset, _, _, _, _, stalls, stalled, busy, sent, made = (int(v) for v in state)
        self.sent += sent
        pacer.anchor_ns, pacer.last_ns, pacer.prev_offset_ns = anchor, last, prev_offset
        pacer.stalls += stalls
        pacer.stalled_ns += stalled
        pacer.busy_ns += busy
        pacer.next_departure += made
        pacer._record_many(late[:made])
