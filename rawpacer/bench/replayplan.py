"""What a replay sends and when, streamed: a capture's records, rewritten and fitted, in chunks of
frames with their departure offsets, computed per chunk from absolute times so memory stays
bounded and a replay of any length (or number of loops) does not drift.

Timing (``Timing``): ``captured`` (each frame at its captured time from the first, divided by
``speed``; loop k shifted by k periods, a period being the capture's span plus its mean gap, so
the gap across a loop boundary is the capture's mean one), ``rate`` (packets/s: frame i at i /
rate; a bit rate: at the link bits of the frames before it / rate) or ``topspeed`` (no offsets).
"""

from __future__ import annotations

import ipaddress
import itertools
import queue
import sys
import threading
from array import array
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rawpacer.errors import UsageError, require
from rawpacer.headers.sequence import sequence_of
from rawpacer.pacing import ConstantSchedule, Rate, parse_rate
from rawpacer.pacing.schedule import Offsets
from rawpacer.readers.replaymatch import datagram_hash
from rawpacer.traffic import Record, Rewriter, make_endpoints
from rawpacer.traffic.fitframe import FITS, fit_frame, link_length

TIMINGS = ("captured", "rate", "topspeed")
CHUNK = 256
"""Records planned at a time: the bound on what a replay holds of the file."""
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
class Timing:
    """When frames leave: ``kind`` (captured, rate, topspeed), captured's ``speed``, rate's ``rate``."""

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
        if rate is not None:
            return cls("rate", 1.0, parse_rate(rate))
        return cls("topspeed") if topspeed else cls("captured", value)

    def describe(self) -> str:
        """One phrase for the first line of the output."""
        if self.kind == "rate":
            return f"at {self.rate}"
        return "at top speed" if self.kind == "topspeed" else f"captured timing x{self.speed:g}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"kind": self.kind, "speed": self.speed, "rate": None if self.rate is None else self.rate.text}


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


def scan(source: Source, mtu: int, fit: str, limit: int | None = None) -> Scan:
    """Read the source once (bounded memory): frames, times, flows; strict fit's refusal, with the
    frame's number, before anything is sent."""
    require(fit in FITS, f"fit {fit!r} is not allowed; use one of: {', '.join(FITS)}")
    counter = Rewriter(
        make_endpoints(
            "02:00:00:00:00:01", "02:00:00:00:00:02", ("198.18.0.1", "198.18.0.2"), ("2001:2::1", "2001:2::2")
        ),
        itertools.count(1),
    )
    found = Scan()
    for record in itertools.islice(source(), limit):
        if not found.frames:
            found.first_ns = record.time_ns
        found.frames += 1
        found.last_ns = record.time_ns
        frame = counter.rewrite(record).frame
        if fit == "strict":
            fit_frame(frame, mtu, fit, 0, f"frame {record.index}")
        found.largest = max(found.largest, min(mtu, len(frame) - link_length(frame)[0]))
    require(found.frames > 0, "the capture holds no frames; nothing to replay")
    found.flows = len(counter.flows)
    return found


def ahead(chunks: Iterator[Chunk], depth: int = AHEAD) -> Generator[Chunk, None, None]:
    """``chunks``, planned by a thread up to ``depth`` chunks ahead of the caller: reading, rewriting
    and fitting frames (Python, ~5 us a frame) run on the other core while the engine sends the
    chunk before (its loop releases the GIL), so planning no longer sets the replay's rate. Close
    the iterator (or exhaust it) to stop the thread; a planning error is raised to the caller."""
    ready: queue.Queue[Chunk | None] = queue.Queue(depth)
    stop = threading.Event()
    failed: list[BaseException] = []

    def plan() -> None:
        try:
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
    """Frames to send, from departure ``start``, with their offsets (ns from the anchor; None at top speed)."""

    start: int
    frames: list[bytes]
    offsets: Offsets | None


@dataclass
class Expected:
    """What the readers should get, per flow: each datagram's hash and scheduled offset, in send order
    (16 bytes a datagram: the one part of a replay that grows with its length)."""

    digests: dict[int, array[int]] = field(default_factory=dict)
    offsets: dict[int, array[int]] = field(default_factory=dict)
    sequences: dict[int, array[int] | None] = field(default_factory=dict)
    """Flow -> the sequence each payload carries, while every one so far carried one (else None)."""
    flows: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Flow -> its captured destination (address, port), for the table."""

    def add(self, flow: int, payload: bytes | memoryview, offset: int) -> None:
        """One datagram of ``flow`` sent at ``offset``."""
        if flow not in self.digests:  # a flow's arrays made once, not a spare set per datagram
            self.digests[flow], self.offsets[flow], self.sequences[flow] = array("Q"), array("q"), array("q")
        self.digests[flow].append(datagram_hash(payload))
        self.offsets[flow].append(offset)
        sequences = self.sequences[flow]
        if sequences is not None:
            sequence = sequence_of(payload)
            if sequence is None:
                self.sequences[flow] = None
            else:
                sequences.append(sequence)


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
    timed by ``timing``; what the readers should get lands in ``expected``."""

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
    ) -> None:
        self.source, self.scan, self.timing = source, found, timing
        self.mtu, self.fit, self.loops, self.limit, self.rewriter = mtu, fit, loops, limit, rewriter
        self.expected = Expected()
        self.counts = Counts()
        self._ip_id = 0
        self._bits = 0
        self._latest = 0
        self._constant = (
            ConstantSchedule(timing.rate.exact) if timing.rate is not None and timing.rate.unit == "pps" else None
        )

    def chunks(self) -> Iterator[Chunk]:
        """The replay, CHUNK records at a time."""
        records = itertools.islice(
            ((loop, record) for loop in range(self.loops) for record in self.source()), self.limit
        )
        while batch := list(itertools.islice(records, CHUNK)):
            yield self._chunk(batch)

    def _chunk(self, batch: list[tuple[int, Record]]) -> Chunk:
        start = self.counts.frames
        frames: list[bytes] = []
        captured: list[int] = []
        datagrams: list[tuple[int, bytes | memoryview, int]] = []
        for loop, record in batch:
            self.counts.records += 1
            rewritten = self.rewriter.rewrite(record) if self.rewriter is not None else None
            frame = rewritten.frame if rewritten is not None else record.data
            self._ip_id = self._ip_id % 0xFFFF + 1
            fitted = fit_frame(frame, self.mtu, self.fit, self._ip_id, f"frame {record.index}")
            self.counts.trimmed += int(fitted.cut > 0)
            if len(fitted.frames) > 1:
                self.counts.fragmented += 1
                self.counts.fragments += len(fitted.frames)
            if rewritten is not None and rewritten.flow is not None:
                self.counts.datagrams += 1
                if rewritten.payload is not None:
                    self._describe_flow(rewritten.flow)
                    payload = rewritten.payload[: len(rewritten.payload) - fitted.cut]
                    datagrams.append((rewritten.flow, payload, len(frames)))
            elif rewritten is not None:
                self.counts.passed += 1
            when = self._captured(loop, record)
            frames.extend(fitted.frames)
            captured.extend([when] * len(fitted.frames))
        self.counts.frames += len(frames)
        offsets = self._offsets(start, frames, captured)
        for flow, payload, at in datagrams:
            self.expected.add(flow, payload, 0 if offsets is None else int(offsets[at]))
        return Chunk(start, frames, offsets)

    def _captured(self, loop: int, record: Record) -> int:
        """A record's offset under captured timing (0 otherwise)."""
        if self.timing.kind != "captured":
            return 0
        at = record.time_ns - self.scan.first_ns + loop * self.scan.period_ns
        return int(at / self.timing.speed)

    def _offsets(self, start: int, frames: list[bytes], captured: list[int]) -> Offsets | None:
        kind, rate = self.timing.kind, self.timing.rate
        if kind == "topspeed":
            return None
        if kind == "captured":  # a capture's clock may step back: never due before the frame before
            offsets = np.maximum.accumulate(np.asarray([self._latest, *captured], np.int64))[1:]
            self._latest = int(offsets[-1])
            return offsets
        if self._constant is not None:
            return self._constant.offsets(start, len(frames))
        assert rate is not None
        bits = np.cumsum([0] + [8 * len(f) for f in frames], dtype=np.int64) + self._bits
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
