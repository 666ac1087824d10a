"""The op loop, written once: the seed's fan-out op, and stream mode's run of fan-outs.

One fan-out op is the seed's job: fresh messages into the readers' shared buffer, arm the
readers, send one message to every reader, wait until each has its datagram (or gives up). With
local readers the next op's messages are made while this op's readers check (the writer's CPU
would only wait) and copied in when it starts. A
stream fills the messages once, sends the fan-out, replays it with ``Writer.resend`` (trafgen's
prebuilt frames) and checks the readers once at the end. Every stream datagram carries its
fan-out's number in its first 8 bytes (``rawpacer.headers.sequence``), stamped once per fan-out
into the shared messages with one C call (``Sequencer``) and by the writer into the
frames it replays (``Writer.restamp``), so the readers count reordering and duplicates per port.

Datagram ``j`` of a run goes to reader ``j % P``. When each datagram leaves is decided in one
place, ``depart``: the ``Departures`` object it is given (the pacer's seam) says when each burst
may leave; ``ASAP`` lets every fan-out leave at once, as fast as the writer goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rawpacer.bench.shaping import Shaped
from rawpacer.headers.sequence import MAX_SEQUENCE, SEQUENCE_BYTES, stamp_sequence
from rawpacer.messages import MessageSource
from rawpacer.readers import OpResult
from rawpacer.remote.readerset import AnyReaders
from rawpacer.writers.base import Message, Writer

if TYPE_CHECKING:
    from rawpacer._pace import Core

try:
    from rawpacer._pace import Core as PACE_CORE
except ImportError:  # no C pacer: paced replays stay in Python
    PACE_CORE = None  # type: ignore[assignment, misc]

STREAM_SETTLE_S = 0.2
"""A stream is over once no datagram arrived for this long after the last send."""

SILENCE_OPS = 20
"""A fan-out op gives up on a missing datagram after this many typical ops' time without one..."""
SILENCE_RANGE_S = (0.005, 1.0)
"""...but never sooner than 5 ms (a scheduler hiccup is not a loss) nor later than the readers' 1 s."""


def silence_for(op_ns: float) -> float:
    """How long an op waits with nothing arriving before it counts what is missing as lost."""
    low, high = SILENCE_RANGE_S
    return min(high, max(low, SILENCE_OPS * op_ns / 1e9))


class Departures(Protocol):
    """When datagrams leave: the seam where a pacer decides the next departure time."""

    @property
    def burst(self) -> int | None:
        """Datagrams that leave together at each departure; None: a whole fan-out at once."""

    def start(self) -> None:
        """Departure 0 is due now; later ones follow from it."""

    def wait(self, departure: int) -> None:
        """Return when departure number ``departure`` may leave."""


class Asap:
    """No schedule: every fan-out leaves at once, as fast as the writer sends."""

    burst: int | None = None

    def start(self) -> None:
        """Nothing to anchor."""

    def wait(self, departure: int) -> None:
        """Never waits."""


ASAP = Asap()


def pieces(ports: int, burst: int | None, total: int) -> Iterator[tuple[int, int, int, int]]:
    """``(departure, datagram, first_port, count)`` for ``total`` datagrams, datagram j to port j % ports.

    A departure carries ``burst`` datagrams (a whole fan-out when None) and is cut where it wraps
    past the last port, since one writer call covers consecutive ports.
    """
    step = ports if burst is None else burst
    departure = done = 0
    while done < total:
        end = min(done + step, total)
        while done < end:
            first = done % ports
            count = min(end - done, ports - first)
            yield departure, done, first, count
            done += count
        departure += 1


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) in the middle of ``depart``: still a KeyboardInterrupt, now saying how far it got."""

    def __init__(self, sent: int, total: int) -> None:
        super().__init__(f"interrupted after {sent:,} of {total:,} datagrams had been sent")
        self.sent = sent
        self.total = total


@runtime_checkable
class CorePaced(Protocol):
    """Departures whose rules the pacer's C core holds (``Pacer``): the engine can run them in C."""

    core: object
    clock: object
    implementation: str


def engine_core(departures: Departures) -> Core | None:
    """The pacer's C core when ``departures`` is a pacer that runs on it, on the real clock: the core
    the engine's loop can be paced by; None otherwise."""
    if isinstance(departures, CorePaced) and departures.clock is None and PACE_CORE is not None:
        core = departures.core
        if isinstance(core, PACE_CORE):
            return core
    return None


def engine_pacing(departures: Departures) -> tuple[bool, Core | None]:
    """Whether the engine can run these departures, and with which core: ``ASAP`` unpaced (None), a
    pacer whose C core runs on the real clock paced by that core; any other (a Python core, a fake
    clock, a wrapper that records each wait) leaves the loop in Python."""
    if isinstance(departures, Asap):
        return True, None
    core = engine_core(departures)
    return core is not None, core


Stamp = Callable[[int], None]
"""Stamps fan-out k's sequence into the messages (and the writer's kept frames) before it leaves."""


def depart(
    writer: Writer,
    messages: Sequence[Message],
    departures: Departures,
    total: int,
    *,
    fresh: int,
    stamp: Stamp | None = None,
) -> int:
    """Send ``total`` datagrams of ``messages`` (one per reader, round after round) when
    ``departures`` lets them go; the first ``fresh`` datagrams are new messages (``send``), the
    rest replay them: through the transmit engine when ``engine_pacing`` allows and the writer
    hands its frames (``Writer.replay_frames``: the loop in C, unpaced or paced by the pacer's core
    at any burst), else with ``resend``. With ``stamp``, each later round's sequence is stamped
    before its first datagram leaves: once per fan-out, never per datagram (the engine stamps its
    frames as they leave). Return the datagrams sent."""
    send, resend, wait = writer.send, writer.resend, departures.wait
    ports = len(messages)
    sent, last = 0, -1

    def in_python(start: int, stop: int) -> None:
        """Datagrams ``start .. stop-1``, each departure waited for here."""
        nonlocal sent, last
        for departure, datagram, first, count in pieces(ports, departures.burst, stop):
            if datagram < start:
                continue
            if departure != last:
                wait(departure)
                last = departure
            if stamp is not None and first == 0 and datagram:
                stamp(datagram // ports)  # a new round: pieces never wrap, so each round starts at port 0
            sent += (resend if datagram >= fresh else send)(messages, first, count)

    usable, core = engine_pacing(departures) if total > fresh else (False, None)
    # The engine's frames are had before the schedule is anchored where the writer can build them
    # then: building them after would make departure 0 late and the catch-up that follows would
    # shorten the stream (+0.1 % at 100k/s). A writer that builds them in ``send`` hands them after.
    frames = writer.replay_frames(messages) if usable else None
    before: int | None = None
    """The engine's count when the replays began (None: they have not)."""
    departures.start()
    try:
        in_python(0, fresh if usable else total)
        if usable:
            frames = frames or writer.replay_frames(messages)
            if frames is None:  # this writer's replays cannot leave from C: on in Python
                in_python(fresh, total)
            else:
                if core is not None and isinstance(departures, CorePaced):
                    departures.implementation = "c-loop"
                before = frames.engine.sent
                sequence = fresh // ports if stamp is not None else None
                sent += frames.send(fresh, total - fresh, core, sequence)
    except KeyboardInterrupt:
        sent += frames.engine.sent - before if frames is not None and before is not None else 0
        raise Interrupted(sent, total) from None
    finally:
        if frames is not None:  # its pool may pin the readers' buffer: let go now, not with a traceback
            frames.pool.release()
    return sent


def send_pool(shape: Shaped, departures: Departures, total: int) -> int:
    """The next ``total`` frames of a shaped stream's pool when ``departures`` let them go: in C when
    ``engine_pacing`` allows (unpaced, or paced by the pacer's core at any burst), else each departure
    waited for here and its burst handed to the engine. ``shape.sent`` moves on by ``total`` (by what
    left after a Ctrl-C, then Interrupted says how far it got). Return the frames the engine sent."""
    frames, first = shape.frames, shape.sent
    usable, core = engine_pacing(departures)
    before, sent = frames.engine.sent, 0
    departures.start()
    try:
        if usable:
            if core is not None and isinstance(departures, CorePaced):
                departures.implementation = "c-loop"
            sent = frames.send(first, total, core)
        else:
            step = departures.burst or frames.batch
            for departure, done in enumerate(range(0, total, step)):
                departures.wait(departure)
                sent += frames.send(first + done, min(step, total - done))
    except KeyboardInterrupt:
        shape.sent += frames.engine.sent - before
        raise Interrupted(frames.engine.sent - before, total) from None
    shape.sent += total
    return sent


@dataclass(frozen=True)
class Outcome:
    """One fan-out op or one stream: what the writer sent, what the readers saw, how long it took."""

    sent: int
    result: OpResult
    elapsed_ns: int
    fanouts: int = 1
    sizes: dict[int, dict[str, int]] | None = None
    """A shaped stream's frames per size (RFC 2544's count): sent, delivered, intact."""


class Sequencer:
    """Stamps a stream's fan-out numbers into the readers' shared messages, all ports at once."""

    def __init__(self, writer: Writer, readers: AnyReaders) -> None:
        self.writer = writer
        self.buffer = readers.buffer
        self.stride = readers.message_size
        self.last = 0
        """The sequence stamped last."""

    def __call__(self, sequence: int) -> None:
        """Fan-out ``sequence``'s field into every message (one C call, numpy without the extension)
        and the writer's kept frames."""
        stamp_sequence(self.buffer, self.stride, 0, sequence)
        self.writer.restamp(sequence)
        self.last = sequence


@dataclass
class OpLoop:
    """A writer, the readers it sends to, where messages come from, and when datagrams leave."""

    writer: Writer
    readers: AnyReaders
    source: MessageSource
    departures: Departures = ASAP
    timestamps: bool = False
    """Keep every fan-out datagram's kernel receive time (``Outcome.result.arrivals``): paced ops."""
    typical_ns: float | None = None
    """A typical complete op's time, learnt as ops complete; sets how long an op waits in silence."""
    shape: Shaped | None = None
    """A shaped stream's frame pool (``--sizes``/``--vary``): streams send it, cycled by the engine."""
    _sequencer: Sequencer | None = field(default=None, init=False, repr=False)
    _ahead: bytearray | None = field(default=None, init=False, repr=False)
    """The next op's fresh messages, made while this op's readers checked theirs (``fanout``)."""

    @property
    def sequenced(self) -> bool:
        """Stream datagrams carry their sequence: there is room for its 8 bytes in what arrives (a
        shaped stream's pool is sent as built: no sequences)."""
        return self.shape is None and self.expected_size >= SEQUENCE_BYTES

    @property
    def sequencer(self) -> Sequencer:
        """The stamp of this loop's streams (made on first use)."""
        if self._sequencer is None:
            self._sequencer = Sequencer(self.writer, self.readers)
        return self._sequencer

    @property
    def expected_size(self) -> int:
        """Bytes each reader should receive (the writer may trim)."""
        return self.writer.delivered_size

    def fanout(self) -> Outcome:
        """The seed's op: fresh messages, arm the readers, send to all, wait for all. A missing
        datagram ends the op after ``silence_for`` the typical op's time with nothing arriving
        (the readers' whole time-out before any op has completed), so a loss costs a bounded wait."""
        readers, ports = self.readers, len(self.readers.ports)
        start = time.perf_counter_ns()
        ahead, self._ahead = self._ahead, None
        if ahead is not None and len(ahead) == len(readers.buffer):
            readers.buffer[:] = ahead
        else:
            self.source.fill(readers.buffer)
        readers.begin(self.expected_size, timestamps=self.timestamps)
        sent = depart(self.writer, readers.messages, self.departures, ports, fresh=ports)
        if readers.fill_ahead and self.source.made_ahead:
            # the next op's messages, made while the readers check these (this CPU would only wait):
            # every op's are still fresh, made once and sent once, in the time of the op before
            ahead = ahead if ahead is not None and len(ahead) == len(readers.buffer) else bytearray(len(readers.buffer))
            self.source.fill(ahead)
            self._ahead = ahead
        typical = self.typical_ns
        result = readers.wait(sent, silence=None if typical is None else silence_for(typical))
        elapsed = time.perf_counter_ns() - start
        if not result.timed_out:
            self.typical_ns = elapsed if typical is None else 0.9 * typical + 0.1 * elapsed
        return Outcome(sent, result, elapsed)

    def fanouts(self, n: int) -> list[Outcome]:
        """``n`` fan-out ops back to back."""
        op = self.fanout
        return [op() for _ in range(n)]

    def begin_stream(self, timestamps: bool = False, fanouts: int | None = None) -> None:
        """Fresh messages for the whole stream (they cannot change mid-stream) carrying sequence 0,
        then arm the readers (keeping every datagram's kernel receive timestamp when ``timestamps``)
        to count sequences below ``fanouts`` (None: a stream of unknown length). A shaped stream's
        messages were filled once, when its pool was built from them."""
        if self.shape is not None:
            self.readers.begin_stream(self.shape.expected_size, timestamps=timestamps, shaped=True)
            return
        self.source.fill(self.readers.buffer)
        sequences = None
        if self.sequenced:
            self.sequencer(0)
            sequences = MAX_SEQUENCE if fanouts is None else fanouts
        self.readers.begin_stream(self.expected_size, timestamps=timestamps, fanouts=sequences)

    def stream(self, fanouts: int, *, timestamps: bool = False, settle: float = STREAM_SETTLE_S) -> Outcome:
        """One stream of ``fanouts`` fan-outs, timed from the first send to the last; delivery counted
        once no datagram came for ``settle`` seconds (with the arrivals' kernel timestamps when
        ``timestamps``)."""
        readers, ports = self.readers, len(self.readers.ports)
        if self.shape is not None:
            return self.shaped_stream(fanouts * ports, timestamps=timestamps, settle=settle)
        self.begin_stream(timestamps, fanouts)
        stamp = self.sequencer if self.sequenced else None
        start = time.perf_counter_ns()
        sent = depart(self.writer, readers.messages, self.departures, fanouts * ports, fresh=ports, stamp=stamp)
        elapsed = time.perf_counter_ns() - start
        return Outcome(sent, readers.end_stream(fanouts, settle=settle), elapsed, fanouts)

    def shaped_stream(self, total: int, *, timestamps: bool = False, settle: float = STREAM_SETTLE_S) -> Outcome:
        """``total`` frames of the shape's pool, frame k pool[k % len], sent by the writer's engine (paced by
        the stream's pacer, or unpaced: ``send_pool``); each reader's count checked against what the pool
        sent it, and per size."""
        shape = self.shape
        assert shape is not None
        self.begin_stream(timestamps)
        start = shape.sent
        began = time.perf_counter_ns()
        # an RFC 2544 trial's departures record each wait around the pacer (``inner``): the pool leaves on the
        # pacer itself, in C, as a shaped trial takes no latency stamps
        send_pool(shape, getattr(self.departures, "inner", self.departures), total)
        elapsed = time.perf_counter_ns() - began
        want = shape.pool.per_slot(start % len(shape.pool) + total, len(self.readers.ports))
        result = shape.recount(self.readers.end_stream(max(1, int(want.max())), settle=settle), start, total)
        return Outcome(
            total, result, elapsed, max(1, total // len(self.readers.ports)), shape.per_size(result, start, total)
        )

    def replay(self) -> int:
        """One more fan-out of an open stream's messages, with the next sequence, nothing awaited
        (the allocation pass's op; a shaped stream's sends one fan-out's worth of its pool)."""
        if self.shape is not None:
            return send_pool(self.shape, ASAP, len(self.readers.ports))
        if self.sequenced:
            self.sequencer(self.sequencer.last + 1)
        return self.writer.resend(self.readers.messages)
