"""The one pacer every writer's stream loop uses: ``wait(i)`` returns when departure i is due.

Departure i is due at ``anchor + schedule.offset_ns(i)`` on the monotonic clock, computed from i,
so no error accumulates; the first departure is anchored ``START_LEAD_NS`` ahead. The pacer
sleeps while the deadline is more than ``spin_ns`` away and spins for the last stretch. Two rules
keep a late pacer honest:

- catch up without bursts: a departure leaves no sooner after the previous one than its
  scheduled gap divided by ``catch_up`` (1.25 by default, the headroom issue 12 asks of a
  writer), so a pacer that fell behind (an interrupt, a vCPU exit, a scheduler slice) runs at
  most 1.25x the rate until it is back on schedule, never in a burst, and the stream keeps its rate;
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

The rules live in a core: ``rawpacer._pace.Core`` (C: ``wait`` is one C call, ~0.2 µs) or
``PyCore`` below (pure Python, ~1.5 µs, on any ``Clock``: the tests' fake one, or when there is no
compiler). ``PacedSender`` runs the same loop, sends included, in the C core with the GIL
released, for sockets that send prebuilt frames.
"""

from __future__ import annotations

import math
import socket
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rawpacer.errors import require
from rawpacer.headers.sequence import SEQUENCE_BYTES, sequence_bytes
from rawpacer.pacing.clock import DEFAULT_SPIN_NS, IMPLEMENTATION, Clock, MonotonicClock
from rawpacer.pacing.schedule import ConstantSchedule, Schedule
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

Buffer = bytes | bytearray | memoryview

if TYPE_CHECKING:
    from rawpacer._pace import Core as CCore


class PyCore:
    """The pacer's rules in pure Python, on any ``Clock`` (the twin of ``_pace.Core``)."""

    def __init__(self, schedule: Schedule, clock: Clock, spin_ns: int, stall_ns: int, gap_ppm: int) -> None:
        self._offset = schedule.offset_ns
        self._now = clock.now
        self._wait_until = clock.wait_until
        self.spin_ns, self.stall_ns, self.gap_ppm = spin_ns, stall_ns, gap_ppm
        self.anchor_ns = self.last_ns = self.prev_offset_ns = 0
        self.started = self._has_prev = False
        self.next_departure = self.departures = self.stalls = self.stalled_ns = self.busy_ns = 0
        self.late_overflow_max = 0
        self._late = array("q")

    def start(self, t0_ns: int | None = None, /) -> None:
        """Anchor departure 0 at ``t0_ns`` (default: START_LEAD_NS from now)."""
        self.anchor_ns = self._now() + START_LEAD_NS if t0_ns is None else int(t0_ns)
        self.started = True

    def wait(self, departure: int, /) -> None:
        """Return when ``departure`` is due, by the rules of the module's docstring."""
        offset = self._offset(departure)
        entry = self._now()
        if not self.started:
            self.anchor_ns, self.started = entry + START_LEAD_NS - offset, True
        due = self.anchor_ns + offset
        late = entry - due
        if late >= self.stall_ns:
            self.stalls += 1
            self.stalled_ns += late
            self.anchor_ns += late
            now = entry
        else:
            target = due
            if self._has_prev:
                target = max(due, self.last_ns + (offset - self.prev_offset_ns) * self.gap_ppm // 1_000_000)
            now, slept = self._wait_until(target, self.spin_ns)
            self.busy_ns += now - entry - slept
        self.departures += 1
        if self.departures <= LATENESS_SAMPLES:
            self._late.append(now - due)
        else:
            self.late_overflow_max = max(self.late_overflow_max, now - due)
        self.last_ns, self.prev_offset_ns, self._has_prev = now, offset, True
        self.next_departure = departure + 1

    def lateness(self) -> bytes:
        """The int64 lateness (ns) of each recorded departure."""
        return self._late.tobytes()


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
    The C core runs it unless a ``clock`` is given (a test's) or ``implementation="python"``.
    """

    wait: Callable[[int], None]
    """Return when departure number ``departure`` is due (i never goes back); ``last_ns`` says when."""

    def __init__(
        self,
        schedule: Schedule,
        *,
        spin_ns: int = DEFAULT_SPIN_NS,
        stall_ns: int | None = None,
        catch_up: float = DEFAULT_CATCH_UP,
        clock: Clock | None = None,
        implementation: Literal["c", "python"] | None = None,
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
        gap_ppm = round(1_000_000 / self.catch_up)
        implementation = implementation or ("python" if clock is not None else IMPLEMENTATION)
        self.core: CCore | PyCore
        if implementation == "c":
            self.core = _c_core(schedule, spin_ns, stall_ns, gap_ppm)
        else:
            clock = clock if clock is not None else MonotonicClock("python")
            self.core = PyCore(schedule, clock, spin_ns, stall_ns, gap_ppm)
        self.implementation: str = implementation if clock is None else getattr(clock, "implementation", "custom")
        self.wait = self.core.wait

    @property
    def burst(self) -> int:
        """Datagrams that leave together at each departure (the schedule's)."""
        return self.schedule.burst

    def start(self, t0_ns: int | None = None) -> None:
        """Anchor departure 0 at ``t0_ns`` (default: START_LEAD_NS from now); else the first ``wait`` does."""
        self.core.start(t0_ns)

    @property
    def anchor_ns(self) -> int | None:
        """When departure 0 is (or would have been) due, after any re-anchoring; None before the start."""
        return self.core.anchor_ns if self.core.started else None

    @property
    def last_ns(self) -> int:
        """When the last ``wait`` returned (its departure left)."""
        return self.core.last_ns

    @property
    def next_departure(self) -> int:
        """The departure after the last one waited for."""
        return self.core.next_departure

    def lateness(self) -> np.ndarray:
        """How late each recorded departure left, in ns (the first LATENESS_SAMPLES departures)."""
        return np.frombuffer(self.core.lateness(), dtype=np.int64)

    def report(self) -> PacerReport:
        """Departures, stalls, the pacer's CPU time (awake in its waits) and lateness p50/p99/max."""
        lateness: dict[str, int | None] = percentiles(self.lateness(), ("p50", "p99", "max"))
        if self.core.departures > LATENESS_SAMPLES:
            lateness["max"] = max(int(lateness["max"] or 0), self.core.late_overflow_max)
        return PacerReport(
            departures=self.core.departures,
            stalls=self.core.stalls,
            stalled_ns=self.core.stalled_ns,
            cpu_ns=self.core.busy_ns,
            lateness_ns=lateness,
            spin_ns=self.spin_ns,
            stall_ns=self.stall_ns,
            catch_up=self.catch_up,
            implementation=self.implementation,
        )


def _c_core(schedule: Schedule, spin_ns: int, stall_ns: int, gap_ppm: int) -> CCore:
    """The C core: a constant schedule's period as q + r/den ns, any other read from ``schedule``."""
    from rawpacer._pace import Core as CCore

    q, r, den = 0, 0, 0
    if isinstance(schedule, ConstantSchedule):
        period = schedule.period_ns
        q, r = divmod(period.numerator, period.denominator)
        den = period.denominator
    return CCore(spin_ns, stall_ns, gap_ppm, START_LEAD_NS, schedule.burst, LATENESS_SAMPLES, q, r, den, schedule)


AF_INET_NATIVE = int(socket.AF_INET).to_bytes(2, "little" if np.little_endian else "big")
"""``sin_family`` as ``struct sockaddr_in`` holds it: host byte order."""


def sockaddr_in(ip: str, port: int) -> bytes:
    """``struct sockaddr_in`` for ``ip``:``port`` (family in host order, port and address in network order)."""
    return AF_INET_NATIVE + port.to_bytes(2, "big") + socket.inet_aton(ip) + bytes(8)


class PacedSender:
    """A paced stream of prebuilt frames from one socket.

    Datagram k is ``frames[k % len(frames)]``, sent to ``addresses[same index]`` (``(ip, port)``
    pairs, IPv4) or, with no addresses, on the connected or bound socket (UDP, AF_PACKET). Each
    departure of ``pacer`` sends ``pacer.burst`` of them. With the pacer's C core (and
    ``loop="c"``, the default) the whole loop runs in C with the GIL released, a burst in one
    ``sendmmsg``; otherwise in Python on ``pacer.wait``. ``sent`` counts what left, also after a
    Ctrl-C.
    """

    def __init__(
        self,
        pacer: Pacer,
        sock: socket.socket,
        frames: Sequence[Buffer],
        addresses: Sequence[tuple[str, int]] | None = None,
        *,
        loop: Literal["c", "python"] | None = None,
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
        self._loop_core = _loop_core(pacer.core)
        self.loop = loop or ("c" if self._loop_core is not None else "python")
        require(
            self.loop == "python" or self._loop_core is not None,
            "loop 'c' needs a pacer with the C core (rawpacer._pace)",
        )
        self._sockaddrs = [sockaddr_in(ip, port) for ip, port in self.addresses] if self.addresses else None
        self._python_sent = 0
        if self.loop == "c":
            pacer.implementation = "c-loop"

    @property
    def sent(self) -> int:
        """Datagrams that left so far."""
        return self._loop_core.sent if self.loop == "c" and self._loop_core is not None else self._python_sent

    def send(self, count: int, sequence: tuple[int, int] | None = None) -> int:
        """Send ``count`` more datagrams on the pacer's schedule; return ``count`` (all of them left).
        ``sequence=(at, first)``: stamp each datagram's stream sequence (``rawpacer.headers.sequence``) at
        byte ``at`` of its (writable) frame as it leaves; the round of frames this call starts in
        carries ``first``, each later round one more (bursts of one, or no longer than the frames)."""
        require(isinstance(count, int) and count >= 0, f"count {count!r} is not allowed; use 0 or more")
        require(
            sequence is None or all(len(f) >= sequence[0] + SEQUENCE_BYTES for f in self.frames),
            f"sequence {sequence!r}: a frame has no room for the {SEQUENCE_BYTES}-byte field there",
        )
        if self.loop == "c" and self._loop_core is not None:
            self._loop_core.send(self.sock.fileno(), self.frames, self._sockaddrs, count, sequence)
        else:
            self._send_python(count, sequence)
        return count

    def _send_python(self, count: int, sequence: tuple[int, int] | None) -> None:
        wait, burst, frames, n = self.pacer.wait, self.pacer.burst, self.frames, len(self.frames)
        send, sendto, addresses = self.sock.send, self.sock.sendto, self.addresses
        goal = self._python_sent + count
        i = self.pacer.next_departure
        at, bias = (-1, 0) if sequence is None else (sequence[0], sequence[1] - self._python_sent // n)
        while self._python_sent < goal:
            wait(i)
            for _ in range(min(burst, goal - self._python_sent)):
                k = self._python_sent % n
                if at >= 0:
                    memoryview(frames[k])[at : at + SEQUENCE_BYTES] = sequence_bytes(self._python_sent // n + bias)
                # Counted first: a signal's exception is raised as a call returns, so after the send.
                self._python_sent += 1
                try:
                    if addresses is None:
                        send(frames[k])
                    else:
                        sendto(frames[k], addresses[k])
                except OSError:
                    self._python_sent -= 1
                    raise
            i += 1


def _loop_core(core: CCore | PyCore) -> CCore | None:
    """``core`` if it is the C core (which can run the send loop), else None."""
    try:
        from rawpacer._pace import Core as CCore
    except ImportError:
        return None
    return core if isinstance(core, CCore) else None
