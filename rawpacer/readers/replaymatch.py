"""The replay verdict, pure: per flow, what was sent (a 64-bit hash per datagram, in send order)
against what arrived (a hash per datagram, in arrival order).

A replay's datagrams all differ, so each is known by its content's hash (``datagram_hash``). Per flow:

- ``intact``: distinct contents sent that arrived (the first arrival of each);
- ``duplicated``: arrivals of a content that had already arrived (the network repeated it, or the
  capture held the same datagram twice: ``repeated`` says how many of those the sender sent);
- ``corrupt``: arrivals of a content that was never sent in the flow;
- ``lost``: distinct contents sent that never arrived;
- ``late``: intact arrivals that came after one sent later than them (reordered);
- so ``delivered = intact + duplicated + corrupt`` and ``sent = intact + lost + repeated``.

A flow whose every payload starts with rawpacer's sequence field (``rawpacer.headers.sequence``: a
capture of rawpacer's own streams, or one crafted with it) is also counted as RFC 4737 counts a
stream, by the sequences its payloads carry rather than by send order: ``reordered`` (3.3's
reordered packets) and ``reorder_extent`` (4.2's largest extent), so frames the capture itself holds
swapped are counted as reordered even though they leave in the file's order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rawpacer.headers.checksum import BytesLike
from rawpacer.readers.core import Order
from rawpacer.readers.counts import Counts

_MASK = (1 << 64) - 1
_SEED, _MUL1, _MUL2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
"""rawpacer/_dghash.h's constants: 2^64 over the golden ratio, SplitMix64's two multipliers."""


def _mix(x: int) -> int:
    x = (x * _MUL1) & _MASK
    x ^= x >> 31
    x = (x * _MUL2) & _MASK
    return x ^ (x >> 29)


def python_datagram_hash(data: BytesLike) -> int:
    """The twin of ``_dghash.h``'s ``dg_hash`` (C makes it ~100x faster): four lanes over the
    8-byte little-endian words of each 32-byte block, the last whole words to lanes 0-2, the
    zero-padded tail to lane 3, folded into a state that starts from the length."""
    raw = bytes(data)
    n = len(raw)
    lanes = [_SEED, _SEED * 3 & _MASK, _SEED * 5 & _MASK, _SEED * 7 & _MASK]
    whole = n - n % 32
    for at in range(0, whole, 8):
        i = at // 8 % 4
        lanes[i] = _mix(lanes[i] ^ int.from_bytes(raw[at : at + 8], "little"))
    at, i = whole, 0
    while at + 8 <= n:
        lanes[i] = _mix(lanes[i] ^ int.from_bytes(raw[at : at + 8], "little"))
        at, i = at + 8, i + 1
    if at < n:
        lanes[3] = _mix(lanes[3] ^ int.from_bytes(raw[at:], "little"))
    h = _mix(_SEED ^ n)
    for lane in lanes:
        h = _mix(h ^ lane)
    return h


def _compiled() -> Callable[[BytesLike], int] | None:
    try:
        from rawpacer._checksum import datagram_hash as compiled
    except ImportError:  # built without a compiler
        return None
    return compiled


_c_datagram_hash = _compiled()


def datagram_hash(data: BytesLike) -> int:
    """A datagram's content as one 64-bit number, what the readers record: rawpacer's own hash
    (``rawpacer/_dghash.h``), not BLAKE2b, because the replay's C planner and recorder compute it
    per datagram at line rate (~0.15 us for 1500 bytes). Two datagrams of one length that differ
    in one 8-byte word never share a hash; it finds corruption and duplicates, not tampering."""
    return _c_datagram_hash(data) if _c_datagram_hash is not None else python_datagram_hash(data)


class _Counted:
    """A FlowVerdict count read from its ``Counts`` (``field``), or None when ``sequenced_only`` and
    the flow is not sequenced."""

    def __init__(self, field: str, sequenced_only: bool = False) -> None:
        self.field, self.sequenced_only = field, sequenced_only

    def __get__(self, verdict: FlowVerdict | None, owner: object = None) -> Any:
        if verdict is None:
            return self
        if self.sequenced_only and not verdict.sequenced:
            return None
        return getattr(verdict.counts, self.field)


@dataclass(frozen=True)
class FlowVerdict:
    """One flow's counts (the module's docstring defines each): what was sent and repeated, and what
    arrived as the readers' ``Counts`` holds it, so a replay's counts add up as every run's do."""

    sent: int = 0
    repeated: int = 0
    counts: Counts = field(default_factory=Counts)
    sequenced: bool = False
    """The payloads carry rawpacer's sequence field: ``reordered`` and ``reorder_extent`` are RFC 4737's
    (None otherwise)."""

    delivered = _Counted("delivered")
    intact = _Counted("intact")
    duplicated = _Counted("duplicate")
    corrupt = _Counted("corrupt")
    lost = _Counted("lost")
    late = _Counted("late")
    reordered = _Counted("reordered", sequenced_only=True)
    reorder_extent = _Counted("reorder_extent", sequenced_only=True)

    @property
    def ok(self) -> bool:
        """Every datagram arrived whole and once (repeats the capture held aside), none reordered."""
        return not (self.lost or self.corrupt or self.late or self.duplicated > self.repeated)

    def __add__(self, other: FlowVerdict) -> FlowVerdict:
        return FlowVerdict(
            self.sent + other.sent,
            self.repeated + other.repeated,
            self.counts + other.counts,
            self.sequenced or other.sequenced,
        )

    def as_dict(self) -> dict[str, Any]:
        """The counts by name, JSON-ready."""
        return {name: getattr(self, name) for name in KEYS}


KEYS = (
    "sent",
    "delivered",
    "intact",
    "duplicated",
    "corrupt",
    "lost",
    "late",
    "repeated",
    "reordered",
    "reorder_extent",
)
"""A verdict's JSON keys, in order."""


def verdict_of(
    sent: int, distinct: int, delivered: int, intact: int, corrupt: int, late: int, order: Order | None
) -> FlowVerdict:
    """A flow's verdict from what its match counted: ``distinct`` contents among the ``sent``, the
    ``delivered`` arrivals of which ``intact`` were first copies and ``corrupt`` never sent."""
    counts = Counts(
        delivered=delivered,
        intact=intact,
        corrupt=corrupt,
        duplicate=delivered - intact - corrupt,
        lost=distinct - intact,
        late=late,
        reordered=0 if order is None else order.reordered,
        reorder_extent=0 if order is None else order.extent,
    )
    return FlowVerdict(sent, sent - distinct, counts, order is not None)


@dataclass(frozen=True)
class Matched:
    """One flow's verdict, and where its intact datagrams are: for each first arrival of a sent
    content, in arrival order, its index among the arrivals and the send position of that content
    (what the pacing figures pair: a receive time with a scheduled one)."""

    verdict: FlowVerdict
    arrivals: Any
    """int64 array: indices into ``received`` of the intact arrivals."""
    positions: Any
    """int64 array: each one's first position in ``sent``."""


def match_flow(sent: Sequence[int], received: Sequence[int], sequences: Sequence[int] | None = None) -> FlowVerdict:
    """The verdict of one flow: ``sent`` hashes in send order, ``received`` in arrival order, and
    ``sequences``, when the flow is sequenced, the sequence each sent payload carries."""
    return match_arrays(sent, received, sequences).verdict


def match_arrays(sent: Any, received: Any, sequences: Any = None) -> Matched:
    """``match_flow`` on arrays, sorted rather than hashed (numpy): ~40 bytes a datagram at its
    peak instead of a dict entry's ~100, so a flow of ten million is judged in seconds.
    ``python_match_flow`` is its twin, kept as the definition the tests hold it to."""
    import numpy as np  # here, not above: the reader process imports this module and never loads numpy

    sent_h = np.asarray(sent, np.uint64)
    got = np.asarray(received, np.uint64)
    distinct, first_at = np.unique(sent_h, return_index=True)  # each content's first send position
    if distinct.size:
        where = np.minimum(np.searchsorted(distinct, got), distinct.size - 1)
        known = np.flatnonzero(distinct[where] == got)
    else:
        where = known = np.zeros(0, np.int64)
    _, firsts = np.unique(got[known], return_index=True)  # each known content's first arrival
    arrivals = known[np.sort(firsts)]
    positions = first_at[where[arrivals]].astype(np.int64)
    before = np.maximum.accumulate(positions)[:-1]
    order = None
    if sequences is not None:
        order = Order()
        for sequence in np.asarray(sequences, np.int64)[positions].tolist():
            order.take(sequence)
    late = int(np.count_nonzero(positions[1:] < before))
    verdict = verdict_of(sent_h.size, distinct.size, got.size, arrivals.size, got.size - known.size, late, order)
    return Matched(verdict, arrivals.astype(np.int64), positions)


def python_match_flow(
    sent: Sequence[int], received: Iterable[int], sequences: Sequence[int] | None = None
) -> FlowVerdict:
    """``match_flow`` one datagram at a time, with a dict: the definition ``match_arrays`` keeps."""
    order = None if sequences is None else Order()
    sequence_of = {} if sequences is None else dict(zip(sent, sequences))
    first_at: dict[int, int] = {}
    position: int | None
    for position, value in enumerate(sent):
        first_at.setdefault(value, position)
    arrived: set[int] = set()
    delivered = corrupt = late = 0
    newest = -1
    for value in received:
        delivered += 1
        position = first_at.get(value)
        if position is None:
            corrupt += 1
        elif value not in arrived:
            arrived.add(value)
            if order is not None:
                order.take(sequence_of[value])
            if position < newest:
                late += 1
            newest = max(newest, position)
    return verdict_of(len(sent), len(first_at), delivered, len(arrived), corrupt, late, order)


def total(verdicts: Iterable[FlowVerdict]) -> FlowVerdict:
    """The sum of several flows' verdicts."""
    out = FlowVerdict()
    for verdict in verdicts:
        out = out + verdict
    return out
