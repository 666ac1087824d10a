"""The one interface every writer implements, and the registry that finds them.

A writer sends one fan-out: ``messages[i]`` to ``target.ports[i]`` on the readers' address, for a
span of i (the whole fan-out by default, or the burst a pacer lets leave now). Standard writers go
through the kernel's UDP stack; raw writers hand-build the headers. Adding a writer is adding one
module to ``rawpacer/writers/`` with a class decorated ``@register``.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import pkgutil
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self

from rawpacer import engine
from rawpacer.engine import Engine, Frames
from rawpacer.errors import UsageError, require
from rawpacer.limits import MAX_MESSAGE_SIZE
from rawpacer.target import Target

if TYPE_CHECKING:
    from rawpacer._pace import Core
    from rawpacer.traffic.pool import FramePool

Message = bytes | bytearray | memoryview
"""One message: a reader's slot of the shared buffer, or any bytes-like object."""

MAX_BATCH = 1024
"""Datagrams the engine hands over at once (UIO_MAXIOV: the most one sendmmsg takes)."""


class Fit(str, enum.Enum):
    """What a raw writer does with a message that does not fit the link's MTU."""

    TRIM = "trim"
    FRAGMENT = "fragment"
    STRICT = "strict"

    @classmethod
    def parse(cls, value: str | Fit) -> Fit:
        """The Fit named by ``value``; UsageError naming the allowed ones otherwise."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(f.value for f in cls)
            raise UsageError(f"fit {value!r} is not allowed; use one of: {allowed}") from None


@dataclass(frozen=True)
class WriterOptions:
    """What every writer is given; each writer's own knobs are its ``knobs_type``."""

    message_size: int = 1500
    fit: Fit = Fit.TRIM
    pcap: str | None = None
    allow_iface: str | None = None

    def __post_init__(self) -> None:
        """Checked where options are made, so no writer repeats the checks."""
        object.__setattr__(self, "fit", Fit.parse(self.fit))
        size = self.message_size
        require(
            isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= MAX_MESSAGE_SIZE,
            f"message_size {size!r} is not allowed; use 0-{MAX_MESSAGE_SIZE}",
        )


@dataclass(frozen=True)
class Knobs:
    """A writer's own settings (ring size, threads, ...); writers without any use this empty one."""


def check_count(name: str, value: object) -> int:
    """A knob that is 0 (automatic) or a positive count; UsageError naming it otherwise."""
    require(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        f"{name} {value!r} is not allowed; use 0 (automatic) or more",
    )
    assert isinstance(value, int)
    return value


class Writer(ABC):
    """One way of sending a fan-out. Construct it inside the writer's namespace; close it after.

    ``send``/``resend`` check the fan-out once and call the writer's ``_send`` hook with the span
    of reader indices to send now; ``close`` releases, once, what the writer registered with
    ``own`` (sockets, rings, pools, files) in reverse order.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    raw: ClassVar[bool] = False
    order: ClassVar[int] = 50
    """Place in listings and tables: the seed's baseline first, the reference peer last."""
    tags_vlan: ClassVar[bool] = False
    """True when the writer builds the link header, so it can put an 802.1Q tag on every frame."""
    benchtime_cap_s: ClassVar[float | None] = None
    """Slow writers (the scapy reference) are timed for at most this long per pass."""
    knobs_type: ClassVar[type[Knobs]] = Knobs
    """The dataclass of this writer's own settings; ``knobs`` is an instance of it (``__init__`` refuses any
    other), so a writer with its own declares ``knobs: ItsKnobs`` beside it and reads them typed."""

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        require(bool(target.ports), "target has no reader ports; give at least one")
        require(
            target.vlan is None or self.tags_vlan,
            f"{self.name} cannot tag frames with VLAN {target.vlan} (the kernel builds its link header); "
            "use packet-raw, packet-ring, xdp or scapy",
        )
        knobs = self.knobs_type() if knobs is None else knobs
        require(
            isinstance(knobs, self.knobs_type),
            f"{type(knobs).__name__} is not {self.name}'s knobs; use {self.knobs_type.__name__}",
        )
        self.target = target
        self.options = options
        self.knobs = knobs
        self._resources = contextlib.ExitStack()
        self._closed = False

    # --- sending -------------------------------------------------------------------------

    def send(self, messages: Sequence[Message], first: int = 0, count: int | None = None) -> int:
        """Send ``messages[i]`` to ``target.ports[i]`` for i in ``first .. first+count-1`` (default:
        all); return the datagrams sent. ``messages`` always holds one message per reader port."""
        stop = self._span(messages, first, count)
        return self._send(messages, first, stop, False)

    def resend(self, messages: Sequence[Message], first: int = 0, count: int | None = None) -> int:
        """Send (part of) the previous fan-out again; the caller promises ``messages`` are unchanged.

        Stream mode's call, the counterpart of trafgen replaying prebuilt frames: a writer that
        keeps the frames it built may copy them out again instead of rebuilding.
        """
        stop = self._span(messages, first, count)
        return self._send(messages, first, stop, True)

    def restamp(self, sequence: int) -> None:
        """The messages now carry ``sequence`` in their sequence field (``rawpacer.headers.sequence``),
        nothing else changed: a writer that replays frames it built rewrites that field in them
        before its next ``resend`` (the UDP checksum stays valid). Writers that send the messages
        themselves, or rebuild every frame, have nothing to do."""

    def _span(self, messages: Sequence[Message], first: int, count: int | None) -> int:
        ports = len(self.target.ports)
        if len(messages) != ports:
            raise UsageError(
                f"{len(messages)} messages for {ports} reader ports; give one message for each of the {ports} ports"
            )
        stop = ports if count is None else first + count
        if not 0 <= first < stop <= ports:
            raise UsageError(f"span of {count} messages from {first} is outside the {ports} reader ports")
        return stop

    @abstractmethod
    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """Send ``messages[start:stop]`` to ``ports[start:stop]``; ``replay`` when they are unchanged
        since the last call that covered them. Return the datagrams sent."""

    def send_frames(self, frames: Sequence[Message]) -> int:
        """Send ``frames``, each a whole link-layer frame as it is (a replay's), in order, with no
        templating or fitting; return the frames sent. Only writers that build the link header can."""
        raise UsageError(
            f"{self.name} cannot send prebuilt frames (the kernel builds its headers); "
            "use packet-raw, packet-ring, xdp or scapy"
        )

    def replay_frames(self, messages: Sequence[Message]) -> Frames | None:
        """The fan-out's frames as a replay sends them, and the engine that moves them ("frames plus
        a ring", ``rawpacer.engine``): a stream's replays then leave from C, unpaced or paced at any
        burst, each frame's sequence stamped on the way. Call it after ``send`` covered every port;
        None when this writer's replays cannot leave that way (threads, fragments, a pcap to record)."""
        return None

    def pool_frames(self, pool: FramePool) -> Frames | None:
        """A shaped stream's frame pool (``--sizes``/``--vary``, ``rawpacer.traffic.pool``) as this writer
        sends it, where it is, and the engine that moves it: a link-header writer its frames, ip-raw
        their IP packets, a kernel UDP writer their payloads, each to its own destination. A stream then
        cycles the pool from C, unpaced or paced at any burst. The writers that override this are the
        ones that can send shapes (``rawpacer.bench.shaping.can_shape``); None when this run's options
        keep it from it (a pcap to record, the engine not built)."""
        return None

    def send_pool(self, data: Message, at: Sequence[int], lengths: Sequence[int], core: Core | None) -> int | None:
        """Prebuilt frames in one buffer (frame j is ``data[at[j] : at[j] + lengths[j]]``, as ``send_frames``
        takes them) through this writer's engine from C: one a departure of ``core``, or unpaced, a
        batch at a time, with ``core`` None (a replay's chunk). Frames sent, or None when this writer's
        frames cannot leave that way (then the caller hands them to ``send_frames``)."""
        return None

    def stamping_socket(self) -> socket.socket | None:
        """The one socket every datagram leaves on, one send each and in order, so the kernel's TX
        timestamps of its sends can be matched to datagrams (RFC 2544 latency); None when sends are
        spread over threads, batched through a ring or UMEM, or may be split into fragments."""
        return None

    # --- what the readers should see ----------------------------------------------------

    @property
    def delivered_size(self) -> int:
        """Bytes each reader should receive per message (the message, or its trimmed prefix)."""
        return self.options.message_size

    @property
    def trimmed_bytes(self) -> int:
        """Bytes cut from each message to fit the link (0 for writers that never trim)."""
        return self.options.message_size - self.delivered_size

    # --- what a run reports about the writer ---------------------------------------------

    def facts(self) -> dict[str, object]:
        """Facts about how this writer ran, for the JSON row (e.g. AF_XDP's copy or zero-copy mode)."""
        return {}

    @property
    def planned_mtu(self) -> int:
        """The MTU this writer's datagrams are planned against: the link's, unless the writer has a
        smaller limit of its own (a raw writer's ring or UMEM frame)."""
        return self.target.link.mtu

    def notes(self) -> list[str]:
        """What the report should say about how this writer ran (e.g. AF_XDP's mode); empty by default."""
        return []

    def problems(self) -> list[str]:
        """One sentence per thing the writer's own counters say went wrong (empty when nothing)."""
        return []

    # --- life cycle ---------------------------------------------------------------------

    def own(self, close: Callable[[], object]) -> None:
        """Register how to release one resource; ``close`` calls it once, newest first."""
        self._resources.callback(close)

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """Wrap a constructor's later steps: if one fails, what was already opened is released."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release sockets, rings, pools and files, newest first. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._resources.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def socket_frames(
    sock: socket.socket, frames: Sequence[Message], delivered: int, addresses: bytes | None = None, batch: int = 1
) -> Frames | None:
    """``frames`` (used where they are when writable, else copied, so a sequence can be stamped into
    them) sent on ``sock`` by the engine's sendmmsg back end, ``batch`` a
    call unpaced, to ``addresses`` (``engine.sockaddrs``) or on the bound socket; each frame's payload
    (its last ``delivered`` bytes) starts with the sequence. None without the engine."""
    if not engine.BUILT:
        return None
    writable = all(isinstance(f, bytearray) or (isinstance(f, memoryview) and not f.readonly) for f in frames)
    pool = engine.pinned(frames, addresses) if writable else engine.pool(frames, addresses)
    return Frames(engine.mmsg(sock.fileno()), pool, min(batch, MAX_BATCH), len(frames[0]) - delivered)


def pooled(
    sender: Engine | None,
    pool: FramePool,
    batch: int,
    *,
    skip: int = 0,
    destinations: Sequence[tuple[str, int]] | None = None,
) -> Frames | None:
    """``pool``'s frames as the engine's pool, where they are (no copy), each from byte ``skip``
    (``payload_at``: the datagrams a kernel UDP socket sends), to its own destination when given,
    ``batch`` a call unpaced, through ``sender``, its stamped fields (``pool.stamps``) written per frame
    on the way; None without one. A shaped stream carries no sequence to stamp."""
    if sender is None:
        return None
    require(skip == 0 or not pool.stamps, "--vary stamps frame headers: a writer sending payloads cannot carry them")
    addresses = None if destinations is None else engine.addressed(destinations)
    frames = engine.Pool(pool.data, (pool.offsets + skip).tolist(), (pool.lengths - skip).tolist(), addresses)
    return Frames(sender, frames, min(batch, MAX_BATCH), stamps=pool.stamps)


REGISTRY: dict[str, type[Writer]] = {}


def register(cls: type[Writer]) -> type[Writer]:
    """Class decorator: make a writer available by its ``name``."""
    REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    import rawpacer.writers as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{package.__name__}.{info.name}")


def names(*, raw: bool | None = None, slow: bool | None = None) -> list[str]:
    """Registered writers' names, standard first, then raw, each by ``order``; ``raw``/``slow``
    keep only the writers that are (True) or are not (False) raw / benchtime-capped."""
    _load_all()
    chosen = [
        n
        for n, cls in REGISTRY.items()
        if (raw is None or cls.raw == raw) and (slow is None or (cls.benchtime_cap_s is not None) == slow)
    ]
    return sorted(chosen, key=lambda n: (REGISTRY[n].raw, REGISTRY[n].order, n))


def get(name: str) -> type[Writer]:
    """The writer class called ``name``; UsageError naming the allowed names otherwise."""
    _load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(f"writer {name!r} is unknown; use one of: {', '.join(names())}") from None
