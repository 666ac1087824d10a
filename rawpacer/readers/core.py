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

A sequenced stream (``begin(..., sequences=n)``) carries each datagram's sequence k < n in its
first 8 bytes (``rawpacer.headers.sequence.sequence_bytes``): a datagram then matches when those bytes
are a valid sequence below n and the rest equals the slot's message after its first 8 bytes.
Each port is then counted as RFC 4737 section 3-4 count a stream: only the first copy of a
sequence counts (later copies are ``repeats``, i.e. duplicates); a first copy whose sequence is
below the next expected one (one more than the highest so far) is *reordered*, and its reordering
extent (4.2.1) is its receive index minus that of the earliest arrival with a higher sequence.
With ``r`` repeats: intact = min(m - r, e), duplicate = r + max(0, m - r - e),
lost = max(0, e - delivered + r).

A shaped stream (``begin(..., sequences=PREFIX)``, ``rawpacer.traffic.pool``) sends datagrams of
several lengths: one matches when it equals that many leading bytes of its slot's message, and
``lengths()`` counts them per length (received, matching).
"""

from __future__ import annotations

import mmap
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from typing import NamedTuple

from rawpacer.headers.sequence import SEQUENCE_BYTES, sequence_of
from rawpacer.readers.counts import Counts, total
from rawpacer.readers.tally import PortTally

Buffer = bytes | bytearray | memoryview | mmap.mmap
"""What a counter reads expected messages and datagrams from (anything with the buffer protocol)."""

PREFIX = -1
"""``begin``'s ``sequences`` for a shaped stream: prefixes of any length match, counted per length."""

LengthRow = tuple[int, int, int]
"""A shaped stream's datagrams of one length: (length, received, matching)."""

NEVER = 1 << 62
"""``per_port`` of a stream until ``set_per_port`` says how many fan-outs were sent."""

Row = tuple[int, int, int, int, int, int, int]
"""One deviating slot as a counter reports it: (slot, received, mismatched, late, repeats,
reordered, max reordering extent)."""


Tallies = tuple[int, int, int, int, bool, list[Row]]
"""What a counter hands the verdict when an op ends: (per_port, delivered, mismatched, late,
sequenced, rows), the rows being the slots that did not get exactly ``per_port`` intact datagrams
in order, in slot order."""


class Verdict(NamedTuple):
    """One op's (or stream's) outcome: its totals and a ``PortTally`` per deviating port."""

    per_port: int
    counts: Counts
    deviations: tuple[PortTally, ...]
    sequenced: bool = False
    """The datagrams carried sequences: ``reordered`` and ``reorder_extent`` were measured."""
    lengths: tuple[LengthRow, ...] = ()
    """A shaped stream's datagrams per length (``Counter.lengths``); empty otherwise."""


def port_tally(
    port: int,
    expected: int,
    received: int,
    mismatched: int,
    late: int,
    repeats: int = 0,
    reordered: int = 0,
    extent: int = 0,
) -> PortTally:
    """One port's counts from what it received: the counting rules above, written once."""
    firsts = received - mismatched - repeats
    return PortTally(
        port,
        Counts(
            delivered=received,
            intact=min(firsts, expected),
            corrupt=mismatched,
            duplicate=repeats + max(0, firsts - expected),
            lost=max(0, expected - received + repeats),
            late=late,
            reordered=reordered,
            reorder_extent=extent,
        ),
    )


def verdict(tallies: Tallies, ports: Sequence[int]) -> Verdict:
    """The op's verdict from a counter's tallies; ``ports[slot]`` names each deviating slot."""
    per_port, delivered, mismatched, late, sequenced, rows = tallies
    deviations = tuple(port_tally(ports[slot], per_port, *counts) for slot, *counts in rows)
    odd = total(t.counts for t in deviations)  # lost, duplicate and reordering happen on deviating ports only
    counts = odd._replace(
        delivered=delivered, intact=delivered - mismatched - odd.duplicate, corrupt=mismatched, late=late
    )
    return Verdict(per_port, counts, deviations, sequenced)


class Order:
    """One port's sequences in a sequenced stream, counted as RFC 4737 counts a stream."""

    __slots__ = ("arrived", "extent", "gap_index", "gap_starts", "next_expected", "reordered", "repeats", "seen")

    def __init__(self) -> None:
        self.seen = bytearray()
        """One bit per sequence that has arrived."""
        self.next_expected = 0
        """RFC 4737 3.3's NextExp: one more than the highest sequence so far."""
        self.arrived = 0
        """First copies received so far: the next one's receive index."""
        self.gap_starts: list[int] = []
        self.gap_index: list[int] = []
        """An in-order arrival that jumped past sequences: the first it passed over, and its index."""
        self.repeats = 0
        self.reordered = 0
        self.extent = 0

    def take(self, sequence: int) -> None:
        """Count one matching datagram carrying ``sequence``."""
        byte, bit = divmod(sequence, 8)
        seen = self.seen
        if byte >= len(seen):
            seen.extend(bytes(max(byte + 1, 2 * len(seen)) - len(seen)))
        if seen[byte] >> bit & 1:
            self.repeats += 1  # RFC 4737 3.3: only the first copy is evaluated
            return
        seen[byte] |= 1 << bit
        index = self.arrived
        self.arrived += 1
        if sequence >= self.next_expected:
            if sequence > self.next_expected:
                self.gap_starts.append(self.next_expected)
                self.gap_index.append(index)
            self.next_expected = sequence + 1
            return
        # Reordered (RFC 4737 3.3). It was passed over by the in-order arrival whose gap holds it,
        # the earliest arrival with a higher sequence (4.2.1's j): extent = index - j.
        self.reordered += 1
        j = self.gap_index[bisect_right(self.gap_starts, sequence) - 1]
        self.extent = max(self.extent, index - j)


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
        self._by_length: dict[int, list[int]] = {}
        self._over: set[int] = set()
        self._reached = 0
        self.sequences = 0
        self._order: dict[int, Order] = {}
        self._rx_ns = array("q")
        self._slot = array("i")
        self._match = array("B")

    @property
    def complete(self) -> bool:
        """Every slot has had at least ``per_port`` datagrams."""
        return self._reached == self.slots

    def begin(self, expected_size: int, stream: bool, timestamps: bool, sequences: int = 0) -> None:
        """Open an op: what arrived since the last one becomes its ``late``; counts start at zero.
        ``sequences`` > 0: a stream whose datagrams carry sequences below it (ignored for an op,
        or a size shorter than the sequence field)."""
        if not 1 <= expected_size <= self.slot_size:
            raise ValueError(f"expected size {expected_size} is out of range 1-{self.slot_size}")
        if sequences < PREFIX:
            raise ValueError(f"sequences {sequences} is not allowed; use 0 (none) or more, or -1 (shaped)")
        shaped = sequences == PREFIX
        self.sequences = sequences if stream and (expected_size >= SEQUENCE_BYTES or shaped) else 0
        self._by_length = {}
        self._order = {}
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
        data = data if type(data) is bytes else bytes(data)
        if self.sequences == PREFIX:
            match = len(data) <= len(wanted) and data == wanted[: len(data)]
            counts = self._by_length.setdefault(min(len(data), self.slot_size + 1), [0, 0])
            counts[0] += 1
            counts[1] += match
        elif self.sequences:
            sequence = sequence_of(data)
            match = (
                len(data) == len(wanted)
                and data[SEQUENCE_BYTES:] == wanted[SEQUENCE_BYTES:]
                and sequence is not None
                and sequence < self.sequences
            )
            if match:
                assert sequence is not None
                order = self._order.get(slot)
                if order is None:
                    order = self._order[slot] = Order()
                order.take(sequence)
        else:
            match = data == wanted
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
        per_port, received, order = self.per_port, self._received, self._order
        odd = self._over | set(self._mismatched) | set(self._late)
        odd.update(i for i, o in order.items() if o.repeats or o.reordered)
        if self._reached < self.slots:
            odd.update(i for i, r in enumerate(received) if r < per_port)
        none = Order()
        rows = []
        for i in sorted(odd):
            o = order.get(i, none)
            rows.append(
                (i, received[i], self._mismatched.get(i, 0), self._late.get(i, 0), o.repeats, o.reordered, o.extent)
            )
        self.active = False
        mismatched, late = sum(self._mismatched.values()), sum(self._late.values())
        return per_port, sum(received), mismatched, late, self.sequences > 0, rows

    def lengths(self) -> list[LengthRow]:
        """A shaped stream's datagrams by length: (length, received, matching), by length."""
        return [(n, c[0], c[1]) for n, c in sorted(self._by_length.items())]

    def arrival_buffers(self) -> tuple[memoryview, memoryview, memoryview]:
        """The op's arrivals so far (rx_ns int64, slot int32, match uint8), valid while held: views of
        copies, so later arrivals neither change them nor meet an array that cannot grow while exported."""
        return memoryview(self._rx_ns[:]), memoryview(self._slot[:]), memoryview(self._match[:])
