"""The readers' counting core, sans I/O: expected messages and (slot, datagram) events in, a verdict out.

This is the reference: the socket loops (``pyloop`` in Python, ``rawpacer._readloop`` in C) feed
it, or a twin of it, what they receive, and tests feed both the same synthetic events. Nothing
here touches a socket, a clock or a process.

Counting rules, per port and op, with ``e`` datagrams expected (1 per op, ``sent_per_port`` in a
stream), ``m`` of them matching the expected bytes and ``c`` not matching:
intact = min(m, e), duplicate = max(0, m - e), corrupt = c, delivered = m + c,
lost = max(0, e - delivered). A datagram matches when its length is exactly the op's expected
size and its bytes equal that many leading bytes of its slot's message. Datagrams arriving
between ops are ``late``: counted against the next op, never ``delivered``.
"""

from __future__ import annotations

import mmap
from array import array
from collections.abc import Sequence
from typing import NamedTuple

from rawpacer.readers.tally import PortTally

Buffer = bytes | bytearray | memoryview | mmap.mmap
"""What a counter reads expected messages and datagrams from (anything with the buffer protocol)."""

NEVER = 1 << 62
"""``per_port`` of a stream until ``set_per_port`` says how many fan-outs were sent."""

Row = tuple[int, int, int, int]
"""One deviating slot as a counter reports it: (slot, received, mismatched, late)."""


Tallies = tuple[int, int, int, int, list[Row]]
"""What a counter hands the verdict when an op ends: (per_port, delivered, mismatched, late, rows),
the rows being the slots that did not get exactly ``per_port`` intact datagrams, in slot order."""


class Verdict(NamedTuple):
    """One op's (or stream's) outcome: the totals and a ``PortTally`` per deviating port."""

    per_port: int
    delivered: int
    intact: int
    corrupt: int
    duplicate: int
    lost: int
    late: int
    deviations: tuple[PortTally, ...]


def port_tally(port: int, expected: int, received: int, mismatched: int, late: int) -> PortTally:
    """One port's counts from what it received: the counting rules above, written once."""
    matched = received - mismatched
    return PortTally(
        port=port,
        delivered=received,
        intact=min(matched, expected),
        corrupt=mismatched,
        duplicate=max(0, matched - expected),
        lost=max(0, expected - received),
        late=late,
    )


def verdict(tallies: Tallies, ports: Sequence[int]) -> Verdict:
    """The op's verdict from a counter's tallies; ``ports[slot]`` names each deviating slot."""
    per_port, delivered, mismatched, late, rows = tallies
    deviations = tuple(port_tally(ports[slot], per_port, r, m, n) for slot, r, m, n in rows)
    duplicate = sum(t.duplicate for t in deviations)
    return Verdict(
        per_port=per_port,
        delivered=delivered,
        intact=delivered - mismatched - duplicate,
        corrupt=mismatched,
        duplicate=duplicate,
        lost=sum(t.lost for t in deviations),
        late=late,
        deviations=deviations,
    )


class Counter:
    """The reference counter: per-slot counts for one op at a time, in plain Python.

    ``expected`` holds every slot's message, ``slot_size`` bytes apart. A slot's expected bytes
    are read when its first datagram of an op arrives, so the caller may refill the buffer between
    ops (and between ``begin`` and sending), but not while datagrams of an op are arriving.
    """

    def __init__(self, expected: Buffer, slot_size: int, slots: int) -> None:
        view = memoryview(expected).cast("B")
        if slot_size < 1 or slots < 1 or len(view) < slot_size * slots:
            raise ValueError(f"{slots} slots of {slot_size} bytes do not fit an expected buffer of {len(view)} bytes")
        self.expected = view
        self.slot_size = slot_size
        self.slots = slots
        self.active = False
        self.per_port = NEVER
        self.expected_size = slot_size
        self.timestamps = False
        self._late_next: dict[int, int] = {}
        self._late: dict[int, int] = {}
        self._received: list[int] = []
        self._mismatched: dict[int, int] = {}
        self._wanted: dict[int, bytes] = {}
        self._over: set[int] = set()
        self._reached = 0
        self._rx_ns = array("q")
        self._slot = array("i")
        self._match = array("B")

    @property
    def complete(self) -> bool:
        """Every slot has had at least ``per_port`` datagrams."""
        return self._reached == self.slots

    def begin(self, expected_size: int, stream: bool, timestamps: bool) -> None:
        """Open an op: what arrived since the last one becomes its ``late``; counts start at zero."""
        if not 1 <= expected_size <= self.slot_size:
            raise ValueError(f"expected size {expected_size} is out of range 1-{self.slot_size}")
        self.expected_size = expected_size
        self.per_port = NEVER if stream else 1
        self.timestamps = timestamps
        self._late, self._late_next = self._late_next, {}
        self._received = [0] * self.slots
        self._mismatched = {}
        self._wanted = {}
        self._over = set()
        self._reached = 0
        self._rx_ns, self._slot, self._match = array("q"), array("i"), array("B")
        self.active = True

    def datagram(self, slot: int, data: Buffer, rx_ns: int = 0) -> None:
        """Count one datagram received on ``slot`` (late when no op is open)."""
        if not 0 <= slot < self.slots:
            raise ValueError(f"slot {slot} is out of range 0-{self.slots - 1}")
        if not self.active:
            self._late_next[slot] = self._late_next.get(slot, 0) + 1
            return
        wanted = self._wanted.get(slot)
        if wanted is None:
            start = slot * self.slot_size
            wanted = self._wanted[slot] = bytes(self.expected[start : start + self.expected_size])
        match = (data if type(data) is bytes else bytes(data)) == wanted
        received = self._received[slot] = self._received[slot] + 1
        if received == self.per_port:
            self._reached += 1
        elif received > self.per_port:
            self._over.add(slot)
        if not match:
            self._mismatched[slot] = self._mismatched.get(slot, 0) + 1
        if self.timestamps:
            self._rx_ns.append(rx_ns)
            self._slot.append(slot)
            self._match.append(match)

    def set_per_port(self, per_port: int) -> None:
        """Fix how many datagrams each slot expects (a stream's count, known at its end)."""
        if per_port < 1:
            raise ValueError(f"per_port {per_port} is not allowed; use 1 or more")
        self.per_port = per_port
        received = self._received
        self._reached = sum(1 for r in received if r >= per_port)
        self._over = {i for i, r in enumerate(received) if r > per_port}

    def tallies(self) -> Tallies:
        """Close the op and return its totals and the slots that did not get exactly ``per_port`` intact."""
        per_port, received = self.per_port, self._received
        odd = self._over | set(self._mismatched) | set(self._late)
        if self._reached < self.slots:
            odd.update(i for i, r in enumerate(received) if r < per_port)
        rows = [(i, received[i], self._mismatched.get(i, 0), self._late.get(i, 0)) for i in sorted(odd)]
        self.active = False
        return per_port, sum(received), sum(self._mismatched.values()), sum(self._late.values()), rows

    def arrival_buffers(self) -> tuple[memoryview, memoryview, memoryview]:
        """The op's arrivals so far (rx_ns int64, slot int32, match uint8), valid while held: views of
        copies, so later arrivals neither change them nor meet an array that cannot grow while exported."""
        return memoryview(self._rx_ns[:]), memoryview(self._slot[:]), memoryview(self._match[:])
