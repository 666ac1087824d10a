"""The replay verdict in bounded memory: ``replaymatch.match_arrays``'s counts, fed as the replay runs.

The plan hands over each datagram it sends (flow, send position, hash, due offset, sequence) and the
readers' records come in batches in arrival order; per flow it counts what ``match_arrays`` counts
and yields each intact arrival's receive time with its due offset (the pacing figures' pairs).

State is bounded by a horizon, ``window`` send positions (the replay's datagram numbers, all flows
counted): a flow forgets a datagram once one of its arrivals was sent ``window`` or more positions
later (the datagram is then lost unless it had arrived), and the whole matcher forgets any datagram
``2 x window`` behind the newest one planned (a flow whose arrivals stalled holds no more). An
intact arrival was sent where its content was first sent; a further copy of a content is taken as
the next send of it the capture made (a loop's next pass), if any. So:

- every count equals ``match_arrays``'s whenever no flow is reordered past the horizon and no
  content repeats further apart than it, whatever the batches; a capture looped (``--loop``) is
  matched as a whole, as a content's first send, leaving the horizon, hands the content on to its
  next send (one exception: a content none of whose copies arrived before its first send left the
  horizon, which then arrives, is intact at that later send's position and due time);
- an arrival of a datagram forgotten (reordered, or repeated by the network, past the horizon)
  counts as **corrupt**, not late nor duplicated; a capture that repeats a content further apart
  than the horizon counts both as distinct (so ``repeated`` is smaller and ``lost`` may be larger).

Hashes, positions and offsets live in numpy arrays (~49 bytes a datagram in the horizon), never one
Python object per datagram; a batch is matched in a few vectorised passes (a search in the flow's
hashes, sorted).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rawpacer.readers.core import Order
from rawpacer.readers.replaymatch import FlowVerdict, verdict_of

WINDOW = 1 << 20
"""The default horizon in send positions: 1 s at 1 Mpps, far past any reordering a path here makes
(ms) plus the time between takes (0.2 s), and at ~49 bytes a datagram for at most 2 x WINDOW
datagrams, ~100 MB at most, whatever the replay's length."""

_EMPTY_U = np.zeros(0, np.uint64)
_EMPTY_I = np.zeros(0, np.int64)
_PENDING, _ARRIVED, _REPEAT, _COPIED = 0, 1, 2, 3
"""A datagram's state: a content not arrived, arrived; a later send of a content, whose copy arrived."""


@dataclass(frozen=True)
class Pairs:
    """Intact arrivals of one batch: kernel receive times and due offsets (ns), in arrival order."""

    rx_ns: npt.NDArray[np.int64]
    due_ns: npt.NDArray[np.int64]


def _uint64(digests: Any) -> npt.NDArray[np.uint64]:
    """Hashes as uint64, from uint64 or from their int64 bits (what the plan's arrays hold)."""
    found = np.asarray(digests)
    if found.dtype == np.uint64:
        return found
    if found.dtype == np.int64:
        return found.view(np.uint64)
    return np.asarray([int(h) & 0xFFFFFFFFFFFFFFFF for h in found.tolist()], np.uint64)


def _search(ordered: Any, values: Any, side: str = "left") -> Any:
    """``np.searchsorted(ordered, values)`` with ``values`` searched in sorted order (numpy starts
    each search where the last ended: several times faster over a large ``ordered`` than random
    lookups), given back in their own order."""
    order = np.argsort(values, kind="stable")
    found = np.empty(len(values), np.int64)
    found[order] = np.searchsorted(ordered, values[order], side)  # type: ignore[call-overload]
    return found


class _Flow:
    """One flow's horizon: its datagrams in send order (position, hash, due, sequence, state) and
    its distinct contents sorted by hash (with each one's first send position)."""

    def __init__(self) -> None:
        self.pos, self.due, self.seq, self.hash = _EMPTY_I, _EMPTY_I, _EMPTY_I, _EMPTY_U
        self.state = np.zeros(0, np.int8)
        self.keys, self.key_pos = _EMPTY_U, _EMPTY_I
        self.sent = self.distinct = self.delivered = self.intact = self.corrupt = self.late = 0
        self.newest = -1
        """The latest send position of the arrivals so far (the horizon is measured back from it)."""
        self.newest_intact = -1
        """The latest send position of the intact arrivals so far (``late`` compares with it)."""
        self.order: Order | None = Order()

    def plan(self, pos: Any, digests: Any, due: Any, seq: Any) -> None:
        """Datagrams sent, in send order: a content already in the horizon is a repeat."""
        _, first = np.unique(digests, return_index=True)
        fresh = np.zeros(digests.size, bool)
        fresh[first] = True
        if self.keys.size:
            at = np.minimum(_search(self.keys, digests), self.keys.size - 1)
            fresh &= self.keys[at] != digests
        self.sent += digests.size
        self.distinct += int(np.count_nonzero(fresh))
        if self.order is not None and bool((seq < 0).any()):
            self.order = None  # not every payload carries a sequence: not a sequenced flow
        self.pos = np.concatenate([self.pos, pos])
        self.hash = np.concatenate([self.hash, digests])
        self.due = np.concatenate([self.due, due])
        self.seq = np.concatenate([self.seq, seq]) if self.order is not None else _EMPTY_I
        self.state = np.concatenate([self.state, np.where(fresh, _PENDING, _REPEAT).astype(np.int8)])
        new_keys = digests[fresh]
        by_key = np.argsort(new_keys, kind="stable")
        new_keys, new_pos = new_keys[by_key], pos[fresh][by_key]
        where = np.searchsorted(self.keys, new_keys)
        self.keys = np.insert(self.keys, where, new_keys)
        self.key_pos = np.insert(self.key_pos, where, new_pos)

    def arrive(self, window: int, digests: Any, rx_ns: Any) -> Pairs:
        """A batch of arrivals in arrival order; the intact ones' pairs."""
        rx_ns = np.asarray(rx_ns, np.int64)
        rx_parts, due_parts = [_EMPTY_I], [_EMPTY_I]
        at = 0
        while True:  # each part ends where the horizon must move on first: it does, so each ends later
            done, pairs = self._arrive(window, digests[at:], rx_ns[at:])
            rx_parts.append(pairs.rx_ns)
            due_parts.append(pairs.due_ns)
            at += done
            if at >= digests.size:
                break
        return Pairs(np.concatenate(rx_parts), np.concatenate(due_parts))

    def _arrive(self, window: int, digests: Any, rx_ns: Any) -> tuple[int, Pairs]:
        """The arrivals up to the first whose content's first send has left the horizon behind the
        arrivals before it (all of them when none has); how many, and the intact ones' pairs. The
        horizon then moves on (``forget``), which hands that content on to a later send or drops it."""
        if self.keys.size:
            at = np.minimum(_search(self.keys, digests), self.keys.size - 1)
            known = np.flatnonzero(self.keys[at] == digests)
            positions = self.key_pos[at[known]]
        else:
            known, positions = _EMPTY_I, _EMPTY_I
        latest, count = self.newest, digests.size
        _, firsts = np.unique(positions, return_index=True)  # each content's first arrival here
        firsts = np.sort(firsts[self.state[np.searchsorted(self.pos, positions[firsts])] == _PENDING])
        sent_at = np.full(positions.size, -1, np.int64)  # each arrival's send position, where known
        sent_at[firsts] = positions[firsts]
        copies, taken = self._copies(digests, known, firsts)
        sent_at[copies] = self.pos[taken]
        newest = np.maximum.accumulate(np.concatenate([[latest], sent_at]))
        past = np.flatnonzero(positions < newest[:-1] - window + 1)
        if past.size:  # stop there: the horizon moves on before that arrival is matched
            count = int(known[past[0]])
            known, positions, firsts = known[: past[0]], positions[: past[0]], firsts[firsts < past[0]]
            taken = taken[copies < past[0]]
            newest = newest[: past[0] + 1]
        self.newest = int(newest[-1])
        self.state[taken] = _COPIED
        self.delivered += count
        self.corrupt += count - known.size
        arrivals, mine = known[firsts], positions[firsts]
        slots = np.searchsorted(self.pos, mine)
        self.state[slots] = _ARRIVED
        self.intact += arrivals.size
        before = np.maximum.accumulate(np.concatenate([[self.newest_intact], mine]))
        self.late += int(np.count_nonzero(mine < before[:-1]))
        self.newest_intact = int(before[-1])
        if self.order is not None:
            for sequence in self.seq[slots].tolist():
                self.order.take(sequence)
        pairs = Pairs(rx_ns[arrivals], self.due[slots])
        self.forget(self.newest - window + 1)
        return count, pairs

    def _copies(self, digests: Any, known: Any, firsts: Any) -> tuple[Any, Any]:
        """The arrivals among ``known`` that are further copies of a content (not ``firsts``) that
        each meet a later send of it the capture made (a loop's next pass), in send order, one each:
        their indices into ``known``, and those sends' slots. That send is where such an arrival
        left from, so the horizon moves with a looped capture's later passes too."""
        copy = np.ones(known.size, bool)
        copy[firsts] = False
        copies = np.flatnonzero(copy)
        spare = np.flatnonzero(self.state == _REPEAT)  # sends of a content again, no copy met yet
        if not copies.size or not spare.size:
            return _EMPTY_I, _EMPTY_I
        by_content = np.argsort(self.hash[spare], kind="stable")  # by content, then send order
        contents, spare = self.hash[spare][by_content], spare[by_content]
        wanted = digests[known[copies]]
        order = np.argsort(wanted, kind="stable")
        rank = np.empty(wanted.size, np.int64)  # the how-manyth copy of its content here, in arrival order
        rank[order] = np.arange(wanted.size) - np.searchsorted(wanted[order], wanted[order])
        at = _search(contents, wanted) + rank
        met = at < _search(contents, wanted, "right")
        return copies[met], spare[at[met]]

    def forget(self, cutoff: int) -> None:
        """Drop every datagram sent before position ``cutoff``. A content the capture sent again
        within the horizon is handed over to its earliest send still kept (arrived or not, as the
        first was), so a capture looped is matched as a whole, however many times it loops."""
        drop = int(np.searchsorted(self.pos, cutoff))
        if not drop:
            return
        gone = self.key_pos < cutoff
        repeats = np.flatnonzero(self.state[drop:] >= _REPEAT) + drop
        if repeats.size and gone.any():
            leaving = np.flatnonzero(gone)
            contents, first = np.unique(self.hash[repeats], return_index=True)  # each one's earliest repeat
            at = np.minimum(np.searchsorted(contents, self.keys[leaving]), contents.size - 1)  # keys: sorted
            kept = contents[at] == self.keys[leaving]
            heirs = repeats[first[at[kept]]]
            self.state[heirs] = self.state[np.searchsorted(self.pos, self.key_pos[leaving[kept]])]
            self.key_pos[leaving[kept]] = self.pos[heirs]
            gone[leaving[kept]] = False
        self.pos, self.due, self.state, self.hash = (
            self.pos[drop:],
            self.due[drop:],
            self.state[drop:],
            self.hash[drop:],
        )
        if self.order is not None:
            self.seq = self.seq[drop:]
        self.keys, self.key_pos = self.keys[~gone], self.key_pos[~gone]

    def verdict(self) -> FlowVerdict:
        return verdict_of(self.sent, self.distinct, self.delivered, self.intact, self.corrupt, self.late, self.order)

    def held(self) -> int:
        """Datagrams in the horizon."""
        return int(self.pos.size)


class StreamMatcher:
    """Every flow's match, fed as the replay runs: ``plan`` (the planning thread) and ``arrive``
    (whoever takes the records) may run in different threads."""

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self._flows: dict[int, _Flow] = {}
        self._planned: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._next = 0

    def plan(self, flows: Any, digests: Any, due_ns: Any, sequences: Any) -> None:
        """Datagrams in send order: each one's flow, content hash (uint64 or its int64 bits), due
        offset (ns) and sequence (-1: none). Only queued here: matched at the next ``arrive``."""
        count = len(flows)
        with self._lock:
            start, self._next = self._next, self._next + count
            self._planned.append((start, flows, digests, due_ns, sequences))

    @property
    def planned(self) -> int:
        """Datagrams planned so far, all flows together."""
        with self._lock:
            return self._next

    def _fold(self) -> None:
        with self._lock:
            planned, self._planned = self._planned, []
            end = self._next
        if planned:  # one batch, so each flow's sorted hashes are merged once a take
            flows = np.concatenate([np.asarray(p[1], np.int64) for p in planned])
            digests = np.concatenate([_uint64(p[2]) for p in planned])
            due = np.concatenate([np.asarray(p[3], np.int64) for p in planned])
            sequences = np.concatenate([np.asarray(p[4], np.int64) for p in planned])
            pos = np.concatenate([np.arange(p[0], p[0] + len(p[1]), dtype=np.int64) for p in planned])
            by_flow = np.argsort(flows, kind="stable")
            cuts = np.flatnonzero(np.diff(flows[by_flow])) + 1
            for part in np.split(by_flow, cuts):
                if part.size:
                    flow = self._flows.setdefault(int(flows[part[0]]), _Flow())
                    flow.plan(pos[part], digests[part], due[part], sequences[part])
        cutoff = end - 2 * self.window
        if cutoff > 0:
            for flow in self._flows.values():
                flow.forget(cutoff)

    def arrive(self, flow: int, digests: Any, rx_ns: Any) -> Pairs:
        """One flow's arrivals in arrival order (hashes, kernel receive times); its intact ones' pairs."""
        self._fold()
        state = self._flows.setdefault(flow, _Flow())
        return state.arrive(self.window, _uint64(digests), rx_ns)

    def verdicts(self) -> dict[int, FlowVerdict]:
        """Every flow planned so far, its verdict so far."""
        self._fold()
        return {flow: state.verdict() for flow, state in sorted(self._flows.items()) if state.sent}

    def held(self) -> int:
        """Datagrams the horizon holds, all flows together (what memory grows with)."""
        self._fold()
        return sum(state.held() for state in self._flows.values())
