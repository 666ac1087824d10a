"""What a replay sends and when, streamed: a capture's records, rewritten and fitted, in chunks of
frames with their departure offsets, computed per chunk from absolute times so memory stays
bounded and a replay of any length (or number of loops) does not drift.

Timing (``Timing``): ``captured`` (each frame at its captured time from the first, divided by
``speed``; loop k shifted by k periods, a period being the capture's span plus its mean gap, so
the gap across a loop boundary is the capture's mean one), ``rate`` (packets/s: frame i at i /
rate; a bit rate: at the link bits of the frames before it / rate) or ``topspeed`` (no offsets).
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import queue
import sys
import threading
from array import array
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rawpacer.errors import UsageError, require
from rawpacer.headers.ethernet import ETH_HLEN
from rawpacer.headers.sequence import sequence_of
from rawpacer.host.placement import Placement
from rawpacer.pacing import (
    DEFAULT_CATCH_UP,
    ConstantSchedule,
    Rate,
    Waits,
    catch_up_label,
    parse_catch_up,
    parse_rate,
    parse_spin,
)
from rawpacer.pacing.schedule import Offsets
from rawpacer.readers.replaymatch import datagram_hash
from rawpacer.readers.streammatch import StreamMatcher
from rawpacer.traffic import Record, Rewriter, make_endpoints
from rawpacer.traffic.fitframe import FITS, fit_frame, link_length
from rawpacer.traffic.lane import CHUNK, RecordChunk, lane_for, pack_records

if TYPE_CHECKING:
    from rawpacer.traffic._lane import Lane

TIMINGS = ("captured", "rate", "topspeed")
LINK_ROOM = 18
"""What a rewritten frame may carry beyond its captured bytes: an Ethernet header and an 802.1Q tag."""
AHEAD = 16
"""Chunks a replay's planning thread may hold ready ahead of the sender (AHEAD x CHUNK frames)."""
SWITCH_S = 1e-4
"""The interpreter's switch interval while a planning thread runs: the sender's C loop takes the GIL
back every 10 ms (signals) and at every chunk, and must not wait the default 5 ms for it."""
MAX_LOOPS = 1_000_000
MAX_SPEED = 1e6

Source = Callable[[], Iterable[Record]]
"""Opens the records afresh (once per loop): a capture file's reader, or a list's iterator."""


@dataclass(frozen=True)
class Timing(Waits):
    """When frames leave: ``kind`` (captured, rate, topspeed), captured's ``speed``, rate's ``rate``,
    how the pacer waits for each (``spin``: adaptive or full, as ``--spin`` on compare) and how fast
    it may catch up when late (``catch_up``: a factor, inf for back to back, as ``--catch-up``)."""

    kind: str = "captured"
    speed: float = 1.0
    rate: Rate | None = None

    @classmethod
    def parse(
        cls,
        timing: str | None = None,
        speed: str | float | None = None,
        rate: str | float | None = None,
        topspeed: bool = False,
        spin: str | None = None,
        catch_up: str | float | None = None,
    ) -> Timing:
        """The timing options as given (None: not given); one line on a conflict or a bad value."""
        given = [
            name
            for name, on in (("--timing", timing is not None), ("--rate", rate is not None), ("--topspeed", topspeed))
            if on
        ]
        require(len(given) <= 1, f"{' and '.join(given)} both set the timing; give one")
        require(
            timing in (None, "captured"), f"timing {timing!r} is not allowed; use captured (or --rate R, --topspeed)"
        )
        if speed is not None:
            require(rate is None and not topspeed, "--speed scales captured timing; drop it with --rate or --topspeed")
            try:
                value = float(speed)
            except (TypeError, ValueError):
                raise UsageError(f"speed {speed!r} is not a number; use a factor above 0 (2 = twice as fast)") from None
            require(
                0 < value <= MAX_SPEED, f"speed {speed!r} is out of range; use a factor above 0, at most {MAX_SPEED:g}"
            )
        else:
            value = 1.0
        waits = "adaptive" if spin is None else parse_spin(spin)
        require(spin is None or not topspeed, "--spin says how a paced replay waits; drop it with --topspeed")
        factor = parse_catch_up(catch_up)
        require(
            catch_up is None or not topspeed,
            "--catch-up says how a late paced replay catches up; drop it with --topspeed",
        )
        if rate is not None:
            return cls("rate", 1.0, parse_rate(rate), spin=waits, catch_up=factor)
        return cls("topspeed") if topspeed else cls("captured", value, spin=waits, catch_up=factor)

    def describe(self) -> str:
        """One phrase for the first line of the output."""
        spinning = ", spinning" if self.spin == "full" else ""
        if self.catch_up != DEFAULT_CATCH_UP:
            spinning += f", catch-up {catch_up_label(self.catch_up)}"
        if self.kind == "rate":
            return f"at {self.rate}{spinning}"
        return "at top speed" if self.kind == "topspeed" else f"captured timing x{self.speed:g}{spinning}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        rate = None if self.rate is None else self.rate.text
        return {
            "kind": self.kind,
            "speed": self.speed,
            "rate": rate,
            "spin": self.spin,
            "catch_up": catch_up_label(self.catch_up),
        }


def parse_loops(value: int | str) -> int:
    """--loop: 1..MAX_LOOPS repetitions."""
    text = str(value).strip()
    require(text.isdigit() and 1 <= int(text) <= MAX_LOOPS, f"loop {value!r} is out of range; use 1-{MAX_LOOPS}")
    return int(text)


def parse_limit(value: int | str | None) -> int | None:
    """--limit: at most this many frames (records) in all, 1 or more; None for no limit."""
    if value is None:
        return None
    text = str(value).strip()
    require(text.isdigit() and int(text) >= 1, f"limit {value!r} is not allowed; use 1 or more frames")
    return int(text)


@dataclass
class Scan:
    """One pass over the source before anything is sent: its frames, span, flows and largest packet."""

    frames: int = 0
    first_ns: int = 0
    last_ns: int = 0
    flows: int = 0
    largest: int = 0
    """The largest IP packet (frame minus its link header) once fitted to the MTU."""

    @property
    def period_ns(self) -> int:
        """One loop's length under captured timing: the span plus the mean gap."""
        span = self.last_ns - self.first_ns
        return span + (span // (self.frames - 1) if self.frames > 1 else 0)


def record_chunks(source: Source, count: int = CHUNK) -> Iterator[RecordChunk]:
    """One pass over ``source`` in chunks of ``count`` records: a capture file's own chunked reader
    (classic pcap parsed in C), anything else packed from its records."""
    chunked = getattr(source, "chunks", None)
    return chunked(count) if chunked is not None else pack_records(source(), count)


def limited(chunks: Iterator[RecordChunk], limit: int | None) -> Iterator[RecordChunk]:
    """``chunks`` up to ``limit`` records in all (None: every one); no chunk is read past it."""
    for chunk in chunks:
        if limit is not None and len(chunk) >= limit:
            yield chunk.head(limit)
            return
        if limit is not None:
            limit -= len(chunk)
        yield chunk


def scan(source: Source, mtu: int, fit: str, limit: int | None = None, *, fast: bool = True) -> Scan:
    """Read the source once (bounded memory): frames, times, flows; strict fit's refusal, with the
    frame's number, before anything is sent. ``fast``: through the C lane when it is built."""
    require(fit in FITS, f"fit {fit!r} is not allowed; use one of: {', '.join(FITS)}")
    counter = Rewriter(
        make_endpoints(
            "02:00:00:00:00:01", "02:00:00:00:00:02", ("198.18.0.1", "198.18.0.2"), ("2001:2::1", "2001:2::2")
        ),
        itertools.count(1),
    )
    lane = lane_for(counter, mtu) if fast else None
    found = Scan()
    for records in limited(record_chunks(source), limit):
        if not found.frames:
            found.first_ns = int(records.times[0])
        found.frames += len(records)
        found.last_ns = int(records.times[-1])
        out = _Frames(records)

        def python(i: int, records: RecordChunk = records) -> None:
            record = records.record(i)
            frame = counter.rewrite(record).frame
            if fit == "strict":
                fit_frame(frame, mtu, fit, 0, f"frame {record.index}")
            found.largest = max(found.largest, min(mtu, len(frame) - link_length(frame)[0]))

        _through(lane, records, out, python)
        if out.count:  # the lane's frames fit the MTU behind the scan's untagged Ethernet header
            found.largest = max(found.largest, int(out.lengths[: out.count].max()) - ETH_HLEN)
    require(found.frames > 0, "the capture holds no frames; nothing to replay")
    found.flows = len(counter.flows)
    return found


class _Frames:
    """A chunk's frames as they are planned: one growing buffer, and per frame its place and length,
    the record it came from, and the UDP datagram it carries (flow -1: none; its payload's hash and
    sequence, -1: none), as the C lane fills them and the Python path appends."""

    def __init__(self, records: RecordChunk, room: bool = True) -> None:
        self.records = records
        n = max(1, len(records))
        # Room for every record's bytes and a tagged header each, unless the chunk is sent as
        # captured (from the records' own buffer): a zeroed buffer of a chunk's size costs a pass.
        self.data = bytearray(int(records.caplens.sum()) + n * LINK_ROOM if room else 0)
        self.size = 0
        self.count = 0
        self.at, self.lengths, self.record_of, self.flows, self.hashes, self.sequences = (
            np.empty(n, np.int64) for _ in range(6)
        )

    def reserve(self, first: int) -> None:
        """Room for records ``first ..`` through the lane (a frame each, their bytes plus a tagged header)."""
        records = self.records
        left = len(records) - first
        if self.count + left > len(self.at):
            more = self.count + left - len(self.at)
            for name in ("at", "lengths", "record_of", "flows", "hashes", "sequences"):
                setattr(self, name, np.concatenate([getattr(self, name), np.empty(more, np.int64)]))
        need = self.size + int(records.caplens[first:].sum()) + left * LINK_ROOM
        if need > len(self.data):
            self.data.extend(bytes(need - len(self.data)))

    def add(self, frame: bytes | bytearray | memoryview, record: int) -> int:
        """One frame the Python path made for ``record``; its number in the chunk."""
        if self.count == len(self.at):
            for name in ("at", "lengths", "record_of", "flows", "hashes", "sequences"):
                setattr(self, name, np.concatenate([getattr(self, name), np.empty(len(self.at), np.int64)]))
        end = self.size + len(frame)
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[self.size : end] = frame
        k = self.count
        self.at[k], self.lengths[k], self.record_of[k], self.flows[k] = self.size, len(frame), record, -1
        self.size, self.count = end, k + 1
        return k


def _through(
    lane: Lane | None, records: RecordChunk, out: _Frames, python: Callable[[int], None], first: int = 0
) -> int:
    """Records ``first ..`` planned in order: runs the C lane takes, the others one by one by ``python``
    (which may append to ``out``). The datagrams the lane rewrote."""
    n, taken, i = len(records), 0, first
    while i < n:
        if lane is not None:
            out.reserve(i)
            stop, size, count = lane.run(
                records.data, records.offsets, records.caplens, records.links, i, n, out.data, out.size,
                out.count, out.at, out.lengths, out.flows, out.hashes, out.sequences,
            )  # fmt: skip
            out.record_of[out.count : count] = np.arange(i, stop)
            taken += count - out.count
            out.size, out.count, i = size, count, stop
            if i == n:
                break
        python(i)
        i += 1
    return taken


def ahead(
    chunks: Iterator[Chunk], depth: int = AHEAD, placement: Placement | None = None
) -> Generator[Chunk, None, None]:
    """``chunks``, planned by a thread up to ``depth`` chunks ahead of the caller: reading, rewriting
    and fitting frames (0.25-1 us a frame through the C lane, 12 us and more in Python) run on the other core while the engine sends the
    chunk before (its loop releases the GIL), so planning no longer sets the replay's rate. Close
    the iterator (or exhaust it) to stop the thread; a planning error is raised to the caller. The
    thread leaves the sender's CPU when ``placement`` pins it."""
    ready: queue.Queue[Chunk | None] = queue.Queue(depth)
    stop = threading.Event()
    failed: list[BaseException] = []

    def plan() -> None:
        try:
            if placement is not None:
                placement.elsewhere()
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ready.put(chunk, timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
            failed.append(exc)
        while not stop.is_set():  # the end: wait for room rather than drop the marker
            try:
                ready.put(None, timeout=0.05)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=plan, name="rawpacer-replay-plan", daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_S)
    thread.start()
    try:
        while (chunk := ready.get()) is not None:
            yield chunk
        if failed:
            raise failed[0]
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


@dataclass
class Chunk:
    """Frames to send, from departure ``start``, in one buffer: frame j is ``data[at[j] : at[j] + lengths[j]]``
    (what the engine's ``Pool`` takes); their offsets (ns from the anchor; None at top speed)."""

    start: int
    data: bytes | bytearray | memoryview
    at: np.ndarray
    lengths: np.ndarray
    offsets: Offsets | None

    @classmethod
    def of(cls, start: int, frames: list[bytes], offsets: Offsets | None = None) -> Chunk:
        """A chunk of ``frames`` given one by one."""
        lengths = np.asarray([len(f) for f in frames], np.int64)
        return cls(start, b"".join(frames), np.cumsum(lengths) - lengths, lengths, offsets)

    def __len__(self) -> int:
        return len(self.at)

    @property
    def frames(self) -> list[bytes]:
        """Each frame as bytes (for a writer without an engine)."""
        return [bytes(self.data[a : a + n]) for a, n in zip(self.at.tolist(), self.lengths.tolist())]


@dataclass
class Expected:
    """What the readers should get, per flow: each datagram's hash and when it was due, in send order,
    and its sequence while the flow is sequenced, kept here (growing with the replay's length) unless
    ``matcher`` takes them as they are planned (what ``run`` does). When it was due is kept as the offset itself (8 bytes) unless ``due`` is set: then as the
    datagram's frame number (4 bytes; ``due`` turns numbers into offsets), or not at all when
    ``due`` is ``ALL_AT_ZERO`` (top speed)."""

    digests: dict[int, array[int]] = field(default_factory=dict)
    offsets: dict[int, array[int]] = field(default_factory=dict)
    """Flow -> each datagram's offset (ns), or its frame number when ``due`` is set."""
    sequences: dict[int, array[int] | None] = field(default_factory=dict)
    """Flow -> the sequence each payload carries, while every one so far carried one (else None)."""
    flows: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Flow -> its captured destination (address, port), for the table."""
    due: Callable[[np.ndarray], np.ndarray] | None = None
    matcher: StreamMatcher | None = None
    """Where the datagrams go instead, when set: matched as the replay runs, nothing kept here."""

    def extend(self, flows: np.ndarray, digests: np.ndarray, sequences: np.ndarray, when: np.ndarray) -> None:
        """Datagrams in send order: each one's flow, payload hash (int64 bits), sequence (-1: none) and
        offset (or frame number, when ``due`` is set), as arrays."""
        if not len(flows):
            return
        if self.matcher is not None:
            self.matcher.plan(flows, digests, when if self.due is None else self.due(when), sequences)
            return
        order = np.argsort(flows, kind="stable")
        flows, digests, sequences, when = flows[order], digests[order], sequences[order], when[order]
        cuts = np.flatnonzero(np.diff(flows)) + 1
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(flows)]):
            flow = int(flows[lo])
            if flow not in self.digests:  # a flow's arrays made once
                self.digests[flow], self.sequences[flow] = array("Q"), array("q")
                if self.due is not ALL_AT_ZERO:
                    self.offsets[flow] = array("q" if self.due is None else "I")
            self.digests[flow].frombytes(digests[lo:hi].tobytes())
            if self.due is not ALL_AT_ZERO:
                kept = self.offsets[flow]
                if kept.typecode == "I" and int(when[hi - 1]) > 0xFFFFFFFF:  # frame numbers past 32 bits
                    kept = self.offsets[flow] = array("q", kept)
                kept.frombytes(when[lo:hi].astype(np.dtype(kept.typecode)).tobytes())
            known = self.sequences[flow]
            if known is not None:
                if (sequences[lo:hi] < 0).any():
                    self.sequences[flow] = None
                else:
                    known.frombytes(sequences[lo:hi].tobytes())

    def offsets_of(self, flow: int) -> np.ndarray:
        """When each of ``flow``'s datagrams was due (ns from the anchor), in send order."""
        if self.due is ALL_AT_ZERO:
            return np.zeros(len(self.digests[flow]), np.int64)
        kept = np.frombuffer(self.offsets[flow], np.dtype(self.offsets[flow].typecode))
        frames = kept.astype(np.int64)
        return frames if self.due is None else np.asarray(self.due(frames), np.int64)


def constant_offsets(schedule: ConstantSchedule, frames: np.ndarray) -> np.ndarray:
    """``schedule.offset_ns`` of each frame number, exactly (floor(i * period)), as int64."""
    q, r = divmod(schedule.period_ns.numerator, schedule.period_ns.denominator)
    den = schedule.period_ns.denominator
    if not len(frames) or int(frames.max()) * max(q, r, 1) < 2**62:
        return np.asarray(frames * q + frames * r // den, np.int64)
    return np.asarray([i * q + i * r // den for i in frames.tolist()], np.int64)


def ALL_AT_ZERO(frames: np.ndarray) -> np.ndarray:
    """``Expected.due`` at top speed: every datagram due at 0 (nothing stored)."""
    return np.zeros(len(frames), np.int64)


@dataclass
class Counts:
    """What the plan did to the frames it read."""

    records: int = 0
    frames: int = 0
    datagrams: int = 0
    passed: int = 0
    trimmed: int = 0
    fragmented: int = 0
    fragments: int = 0


class Plan:
    """The chunks of a replay: ``source`` read ``loops`` times (at most ``limit`` records in all),
    each record rewritten (``rewriter``; None: sent as captured), fitted to ``mtu`` under ``fit``,
    timed by ``timing``; what the readers should get lands in ``expected``. ``fast``: the common
    frames through the C lane (``traffic.lane``) when it is built, the rest by the Python path."""

    def __init__(
        self,
        source: Source,
        found: Scan,
        timing: Timing,
        *,
        mtu: int,
        fit: str,
        loops: int = 1,
        limit: int | None = None,
        rewriter: Rewriter | None = None,
        fast: bool = True,
    ) -> None:
        self.source, self.scan, self.timing = source, found, timing
        self.mtu, self.fit, self.loops, self.limit, self.rewriter = mtu, fit, loops, limit, rewriter
        self.lane = lane_for(rewriter, mtu) if fast and rewriter is not None else None
        self.counts = Counts()
        self._ip_id = 0
        self._bits = 0
        self._latest = 0
        self._constant = (
            ConstantSchedule(timing.rate.exact) if timing.rate is not None and timing.rate.unit == "pps" else None
        )
        due: Callable[[np.ndarray], np.ndarray] | None = None
        if timing.kind == "topspeed":
            due = ALL_AT_ZERO
        elif self._constant is not None:
            due = functools.partial(constant_offsets, self._constant)
        self.expected = Expected(due=due)

    def chunks(self) -> Iterator[Chunk]:
        """The replay, CHUNK records at a time."""
        left = self.limit
        for loop in range(self.loops):
            if left == 0:
                return
            for records in limited(record_chunks(self.source), left):
                left = None if left is None else left - len(records)
                yield self._chunk(loop, records)

    def _chunk(self, loop: int, records: RecordChunk) -> Chunk:
        start = self.counts.frames
        self.counts.records += len(records)
        # sent as captured, and every frame fits (fit_frame's own first test): the records themselves
        as_captured = self.rewriter is None and bool((records.caplens - ETH_HLEN <= self.mtu).all())
        out = _Frames(records, room=not as_captured)
        base_id = self._ip_id
        if as_captured:
            out.data, out.size, out.count = records.data, 0, len(records)  # type: ignore[assignment]
            out.at, out.lengths, out.record_of = records.offsets, records.caplens, np.arange(len(records))
            out.flows = np.full(len(records), -1, np.int64)
        else:
            taken = _through(
                self.lane, records, out, lambda i: self._python(records, i, out, (base_id + i) % 0xFFFF + 1)
            )
            self.counts.datagrams += taken  # after: the Python path counts its own as it goes
        self._ip_id = (base_id + len(records) - 1) % 0xFFFF + 1
        self.counts.frames += out.count
        offsets = self._offsets(start, loop, records, out)
        sent = np.flatnonzero(out.flows[: out.count] >= 0)
        if len(sent):
            flows = out.flows[sent]
            for flow in np.unique(flows).tolist():
                self._describe_flow(flow)
            if self.expected.due is None:
                when = np.zeros(len(sent), np.int64) if offsets is None else np.asarray(offsets)[sent]
            else:
                when = sent + start
            self.expected.extend(flows, out.hashes[sent], out.sequences[sent], when)
        return Chunk(start, out.data, out.at[: out.count], out.lengths[: out.count], offsets)

    def _python(self, records: RecordChunk, i: int, out: _Frames, ip_id: int) -> None:
        """Record ``i`` as the Python path plans it: ``Rewriter.rewrite`` and ``fit_frame``, its frames into ``out``."""
        record = records.record(i)
        rewritten = self.rewriter.rewrite(record) if self.rewriter is not None else None
        frame = rewritten.frame if rewritten is not None else record.data
        fitted = fit_frame(frame, self.mtu, self.fit, ip_id, f"frame {record.index}")
        self.counts.trimmed += int(fitted.cut > 0)
        if len(fitted.frames) > 1:
            self.counts.fragmented += 1
            self.counts.fragments += len(fitted.frames)
        first = -1
        for piece in fitted.frames:
            k = out.add(piece, i)
            first = k if first < 0 else first
        if rewritten is not None and rewritten.flow is not None:
            self.counts.datagrams += 1
            if rewritten.payload is not None:
                payload = rewritten.payload[: len(rewritten.payload) - fitted.cut]
                sequence = sequence_of(payload)
                out.flows[first] = rewritten.flow
                digest = datagram_hash(payload)
                out.hashes[first] = digest - (1 << 64) if digest >> 63 else digest  # its bits as int64
                out.sequences[first] = -1 if sequence is None else sequence
        elif rewritten is not None:
            self.counts.passed += 1

    def _offsets(self, start: int, loop: int, records: RecordChunk, out: _Frames) -> Offsets | None:
        kind, rate = self.timing.kind, self.timing.rate
        if kind == "topspeed":
            return None
        if kind == "captured":  # a capture's clock may step back: never due before the frame before
            at = records.times - self.scan.first_ns + loop * self.scan.period_ns
            when = (at / self.timing.speed).astype(np.int64)[out.record_of[: out.count]]
            offsets = np.maximum.accumulate(np.concatenate([[self._latest], when]))[1:]
            self._latest = int(offsets[-1])
            return offsets
        if self._constant is not None:
            return self._constant.offsets(start, out.count)
        assert rate is not None
        bits = np.concatenate([[0], np.cumsum(8 * out.lengths[: out.count], dtype=np.int64)]) + self._bits
        self._bits = int(bits[-1])
        return (bits[:-1].astype(object) * 10**9 * rate.exact.denominator // rate.exact.numerator).astype(np.int64)

    def _describe_flow(self, flow: int) -> None:
        """Remember a new flow's captured destination, for the table."""
        if flow in self.expected.flows or self.rewriter is None:
            return
        for (dst, dport), (number, _port) in self.rewriter.flows.items():
            if number == flow:
                self.expected.flows[flow] = (str(ipaddress.ip_address(dst)), dport)
                return
