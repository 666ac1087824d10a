"""``RemoteReaderSet``: the ``ReaderSet`` the op loop knows, with its readers on other hosts.

It presents what ``rawpacer.bench.oploop`` uses (``ports``, ``buffer``, ``messages``, ``begin``,
``wait``, ``begin_stream``, ``end_stream``, ``tally``, ``close``), each proxied to one agent per
host. Per op a host sees two messages: ``begin`` with its share of the expected messages (the
agent must hold them before the first datagram arrives), answered ``armed``; then ``wait``,
answered with one ``result``. Requests go to every host before any answer is read, so the hosts
work at once. Hosts get consecutive port ranges, so a port names its host.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from rawpacer.errors import UsageError, require
from rawpacer.limits import FIRST_PORT, MAX_PORT, MAX_READERS
from rawpacer.messages import FixedSource, MessageSource, SeededSource, check_size
from rawpacer.readers import Arrivals, OpResult, ReaderSet, RunTally
from rawpacer.readers.counts import total
from rawpacer.readers.process import STREAM_CAP_S
from rawpacer.readers.readerset import ANSWER_MARGIN_S
from rawpacer.readers.starting import Starting
from rawpacer.remote import clock, outcome, wire
from rawpacer.remote.agent import CHAIN_SILENCE_S
from rawpacer.remote.channel import Channel
from rawpacer.remote.spec import Host, shares

OPEN_TIMEOUT_S = 60.0
CHAIN_USE_S = 0.25
"""A prearmed op is used only this soon after its agent's last result: well inside the agent's
CHAIN_SILENCE_S, so it cannot end empty while the datagrams are on their way."""
CHANNEL_SLACK_S = 0.05
"""Added to an op's silence: the agent starts counting it when armed, before the controller has heard
that and sent anything, so a slow channel must not make datagrams on their way count as lost."""


@dataclass
class Share:
    """One host's part of the run: its channel, ports, address, slots, clock and tally."""

    host: Host
    channel: Channel
    addr: str
    ports: tuple[int, ...]
    first_slot: int
    loop: str
    offset: clock.Offset
    tally: RunTally
    latency_raw_ns: list[float] = field(default_factory=list)
    prearmed: tuple[bytes, int, bool] | None = None
    """(seed, expected size, timestamps) of the op the agent opened on its own after the last one."""
    result_at: float = 0.0
    """When its last result came (perf_counter), to know whether its prearmed op is still open."""

    @property
    def slots(self) -> slice:
        """Its readers' indices in the whole set."""
        return slice(self.first_slot, self.first_slot + len(self.ports))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: host, address, ports, its tally, clock offset and one-way latency."""
        return {
            "host": self.host.label,
            "addr": self.addr,
            "readers": len(self.ports),
            "ports": [self.ports[0], self.ports[-1]],
            "loop": self.loop,
            **self.tally.to_dict(),
            "clock": self.offset.to_dict(),
            "one_way_latency": clock.one_way(self.latency_raw_ns, self.offset).to_dict(),
        }


def merge(parts: Sequence[OpResult], sent: int, wait_s: float, op_s: float, slot_bases: Sequence[int]) -> OpResult:
    """One OpResult for the whole set from each host's (counts summed, arrivals' slots shifted)."""
    first = parts[0]
    got = None
    if any(p.arrivals is not None for p in parts):
        pieces = [(p.arrivals, base) for p, base in zip(parts, slot_bases) if p.arrivals is not None]
        got = Arrivals(
            np.concatenate([a.rx_ns for a, _ in pieces]),
            np.concatenate([a.slot + np.int32(base) for a, base in pieces]).astype(np.int32),
            np.concatenate([a.match for a, _ in pieces]),
        )
    return OpResult(
        mode=first.mode,
        readers=sum(p.readers for p in parts),
        expected_size=first.expected_size,
        per_port=first.per_port,
        sent=sent,
        timed_out=any(p.timed_out for p in parts),
        reader_cpu_s=sum(p.reader_cpu_s for p in parts),
        wait_s=wait_s,
        op_s=op_s,
        deviations={port: t for p in parts for port, t in p.deviations.items()},
        reader_busy_s=sum(p.reader_busy_s for p in parts),
        reader_first_ns=min((p.reader_first_ns for p in parts if p.reader_first_ns), default=0),
        reader_last_ns=max(p.reader_last_ns for p in parts),
        arrivals=got,
        counts=total(p.counts for p in parts),
        reader_checked=sum(p.reader_checked for p in parts),
        sequenced=first.sequenced,
    )


def remote_clock(channel: Channel) -> int:
    """One read of the agent's CLOCK_REALTIME (one round trip)."""
    return int(channel.request("clock", "time", ANSWER_MARGIN_S)["realtime_ns"])


class RemoteReaderSet(Starting):
    """``count`` readers spread over ``hosts`` (by weight), each host's on ``addrs[i]`` (None: the
    address the SSH client reached), ports from ``first_port`` up across the hosts in order."""

    fill_ahead: ClassVar[bool] = False
    """The remote readers make their share from the fill's seed, chained op to op: fill at the op's start."""

    def __init__(
        self,
        hosts: Sequence[Host],
        count: int,
        message_size: int,
        *,
        addrs: Sequence[str | None] | None = None,
        timeout: float = 1.0,
        first_port: int = FIRST_PORT,
    ) -> None:
        require(bool(hosts), "no remote hosts given; use --remote [user@]host[:port]")
        require(
            isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_READERS,
            f"reader count {count!r} is out of range 1-{MAX_READERS}",
        )
        check_size(message_size)
        require(first_port + count - 1 <= MAX_PORT, f"first port {first_port} with {count} readers does not fit")
        addrs = list(addrs) if addrs is not None else [None] * len(hosts)
        require(len(addrs) == len(hosts), f"{len(addrs)} remote addresses for {len(hosts)} hosts; give one each")
        self.count = count
        self.message_size = message_size
        self.timeout = float(timeout)
        self.shares: list[Share] = []
        self._channels: list[Channel] = []
        self._closed = False
        self._pending: tuple[str, int, float, bool, int] | None = None
        self._silence: float | None = None
        self._source: MessageSource | None = None
        self._sent_seed: bytes | None = None
        self._used_seed: bytes | None = None
        """The silence an op's agent waits with: the one the last ``wait`` asked for (the op loop's
        changes slowly), since each agent ends its op on its own and no wait request is sent."""
        try:
            self._open(hosts, addrs, shares(count, tuple(hosts)), first_port)
        except BaseException:
            self.close()
            raise
        self.ports: tuple[int, ...] = tuple(p for s in self.shares for p in s.ports)
        self._host_of_port = {p: s for s in self.shares for p in s.ports}
        self.loop = self.shares[0].loop
        self.pid = self.shares[0].channel.process.pid
        """The first ssh client's pid (what host.sample watches on this side)."""
        self._shared = bytearray(count * message_size)
        self.buffer = memoryview(self._shared)
        self.messages = [self.buffer[i * message_size : (i + 1) * message_size] for i in range(count)]
        self.tally = RunTally(self.ports)

    def _open(self, hosts: Sequence[Host], addrs: Sequence[str | None], split: list[int], first_port: int) -> None:
        """Start every agent, open each host's readers (all hosts at once), measure each clock."""
        for host in hosts:
            self._channels.append(Channel(host))
        port = first_port
        for channel, addr, n in zip(self._channels, addrs, split):
            channel.send(
                "open", count=n, size=self.message_size, first_port=port, first_slot=port - first_port,
                addr=addr or "", timeout=self.timeout,
            )  # fmt: skip
            port += n
        slot = 0
        for channel, n in zip(self._channels, split):
            opened = channel.answer("opened", OPEN_TIMEOUT_S)
            ports = tuple(opened["ports"])
            offset = clock.measure(functools.partial(remote_clock, channel), time.time_ns)
            self.shares.append(
                Share(channel.host, channel, opened["addr"], ports, slot, opened["loop"], offset, RunTally(ports))
            )
            slot += n

    # --- the op loop's interface ---------------------------------------------------------

    def _start(
        self, stream: bool, expected_size: int | None, timestamps: bool, fanouts: int | None, shaped: bool
    ) -> None:
        # a shaped stream's per-size counting is local only: refused before a run
        require(not shaped, "a shaped stream (--sizes, --vary) needs local readers; drop --remote")
        mode = "stream" if stream else "op"
        size = self.message_size if expected_size is None else expected_size
        require(
            isinstance(size, int) and 1 <= size <= self.message_size,
            f"expected size {size!r} is out of range 1-{self.message_size} (the message size)",
        )
        if self._closed:
            raise UsageError("this RemoteReaderSet is closed")
        if self._pending is not None:
            raise UsageError(f"a {self._pending[0]} is already running: call wait()/end_stream() first")
        started = time.perf_counter()
        how, seed = self._how_filled()
        used = self._source.last_seed if isinstance(self._source, SeededSource) else None
        wanted = (used, size, bool(timestamps)) if mode == "op" and how in wire.SEEDED else None
        for share in self.shares:  # first drop the prearmed ops this one cannot use (each may take 0.5 s)...
            if share.prearmed is not None and share.prearmed != wanted:
                self._drain(share)
        asked = []
        for share in self.shares:  # ...then use the others while they are surely still open
            if share.prearmed is not None:
                if time.perf_counter() - share.result_at < CHAIN_USE_S and not share.channel.inbox.ready():
                    share.prearmed = None
                    continue  # the agent armed this op itself: send at once
                self._drain(share)
            if self._sent_seed is None and how == "same":
                how, seed = self._how_filled()  # a drained agent's buffer holds the chained fill
            mine = self.buffer[share.slots.start * self.message_size : share.slots.stop * self.message_size]
            share.channel.send(
                "begin", mine if how == "bytes" else seed, mode=mode, expected_size=size,
                timestamps=bool(timestamps), silence=self._silence, fill=how, prearm=mode == "op" and how in wire.SEEDED,
                fanouts=fanouts,
            )  # fmt: skip
            asked.append(share)
        for share in asked:
            share.channel.answer("armed", ANSWER_MARGIN_S)
        self._used_seed = used
        self._pending = (mode, size, started, bool(timestamps), time.time_ns())

    def _drain(self, share: Share) -> None:
        """Read (and drop) the result of the op ``share``'s agent armed on its own and nobody used: it
        ends empty ``CHAIN_SILENCE_S`` after it was armed. Its buffer then holds the chained fill."""
        share.prearmed = None
        share.channel.answer("result", CHAIN_SILENCE_S + self.timeout + ANSWER_MARGIN_S)
        self._sent_seed = None  # so the next begin says its seed again

    def settle(self) -> None:
        """Every agent between ops, no prearmed op left open (before a request of another kind, or a
        pause: a prearmed op's readers poll for its datagrams until it ends, 0.5 s after it opened)."""
        for share in self.shares:
            if share.prearmed is not None:
                self._drain(share)

    def attach(self, source: MessageSource) -> None:
        """The source that fills ``buffer`` (the op loop's): a crypto or fast fill then crosses the wire
        as its 32-byte seed, a fixed one once; any other fill, or none seen, as the bytes themselves."""
        self._source = source
        self._sent_seed = None

    def _how_filled(self) -> tuple[str, bytes]:
        """(wire.FILLS entry, blob) for the buffer as it is now."""
        source = self._source
        if isinstance(source, SeededSource) and source.last_seed is not None:
            if source.last_seed is self._sent_seed:
                return "same", b""
            self._sent_seed = source.last_seed
            return source.name, source.last_seed
        if isinstance(source, FixedSource) and self._sent_seed is not None:
            return "same", b""
        if isinstance(source, FixedSource):
            self._sent_seed = b"fixed"
        return "bytes", b""

    def _finish(self, mode: str, sent: int, request: dict[str, Any], answer_within: float, strict: bool) -> OpResult:
        if self._pending is None or self._pending[0] != mode:
            raise UsageError(f"no {mode} is running: call {'begin' if mode == 'op' else 'begin_stream'}() first")
        _, _, started, timestamps, sent_rt = self._pending
        self._pending = None
        called = time.perf_counter()
        if mode == "stream":
            for share in self.shares:
                share.channel.send("end_stream", **request)
        parts = []
        for share in self.shares:
            msg = share.channel.answer("result", answer_within + ANSWER_MARGIN_S)
            done = time.perf_counter()
            verdict = outcome.Verdict(msg["mode"], msg["deviations"], msg["arrivals"], msg.blob)
            result, first_rt = outcome.from_wire(
                verdict, sent=len(share.ports) * (sent // max(1, self.count)),
                wait_s=done - called, op_s=done - started, timestamps=timestamps,
            )  # fmt: skip
            if result.arrivals is not None and len(result.arrivals):  # onto our clock, by the measured offset
                moved = result.arrivals.rx_ns - np.int64(round(share.offset.offset_ns))
                result.arrivals = Arrivals(moved, result.arrivals.slot, result.arrivals.match)
            share.tally.add(result)
            if msg["prearmed"] and self._used_seed is not None:
                share.prearmed = (wire.chained(self._used_seed), result.expected_size, timestamps)
                share.result_at = time.perf_counter()
            if first_rt and mode == "op":
                share.latency_raw_ns.append(first_rt - sent_rt)
            parts.append(result)
        if any(share.prearmed for share in self.shares) and isinstance(self._source, SeededSource):
            self._source.next_seed = wire.chained(self._used_seed or b"")  # the next fill is what they armed
        done = time.perf_counter()
        merged = merge(parts, sent, done - called, done - started, [s.first_slot for s in self.shares])
        self.tally.add(merged)
        return merged.raise_for_loss() if strict else merged

    def wait(self, sent: int | None = None, *, strict: bool = False, silence: float | None = None) -> OpResult:
        """End the op on every host: each agent answers once all its readers have a datagram, or gives
        up (``timeout``, or the silence of the previous op's ``wait``); the results merged. ``silence``
        applies from the next op on."""
        sent = self.count if sent is None else sent
        self._silence = None if silence is None else silence + CHANNEL_SLACK_S
        return self._finish("op", sent, {}, self.timeout, strict)

    def end_stream(self, sent_per_port: int, settle: float = 0.2, *, strict: bool = False) -> OpResult:
        """End a stream of ``sent_per_port`` fan-outs on every host; the results merged."""
        require(
            isinstance(sent_per_port, int) and sent_per_port >= 1,
            f"sent per port {sent_per_port!r} is not allowed; use 1 or more",
        )
        request = {"sent_per_port": sent_per_port, "settle": float(settle)}
        return self._finish("stream", sent_per_port * self.count, request, STREAM_CAP_S, strict)

    def abort(self) -> None:
        """Back to idle: the op or stream left open is ended on every host (an agent ends one only by
        answering it; the answer is tallied with nothing sent, not returned), any prearmed op drained."""
        if self._pending is not None:
            if self._pending[0] == "op":
                self._finish("op", 0, {}, self.timeout, False)
            else:
                self._finish("stream", 0, {"sent_per_port": 1, "settle": 0.05}, STREAM_CAP_S, False)
        self.settle()

    def close_port(self, port: int) -> None:
        """Test hook: the agent holding ``port`` closes its socket."""
        share = self._host_of_port.get(port)
        require(share is not None, f"port {port!r} is not one of this RemoteReaderSet's reader ports")
        assert share is not None
        self.settle()
        share.channel.request("close_port", "done", ANSWER_MARGIN_S, port=port)

    def explain(self, lost: int) -> list[str]:
        """Each host's own counters on why datagrams were lost since the last call: ``host: why``."""
        self.settle()
        return [
            f"{s.host.label}: {s.channel.request('explain', 'explained', ANSWER_MARGIN_S, lost=lost)['text']}"
            for s in self.shares
        ]

    def new_pass(self) -> None:
        """Fresh per-host tallies and latency samples: what ``describe_hosts`` says covers one pass from here."""
        for share in self.shares:
            share.tally = RunTally(share.ports)
            share.latency_raw_ns = []

    def describe_hosts(self) -> list[dict[str, Any]]:
        """Per host: its share of the readers, what they got, its clock and one-way latency."""
        return [s.to_dict() for s in self.shares]

    def close(self) -> None:
        """Say bye to every agent and end every ssh process. Safe twice."""
        if self._closed:
            return
        self._closed = True
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


AnyReaders = ReaderSet | RemoteReaderSet
"""What the op loop drives: readers here, or on other hosts."""


def remote_line(readers: RemoteReaderSet) -> str:
    """``here -> h1 (198.18.1.2), h2 (...)`` for a run's first line."""
    return "here -> " + ", ".join(f"{s.host.label} ({s.addr})" for s in readers.shares)


def host_line(share: dict[str, Any]) -> str:
    """One host's share as a line: readers, ports, delivered and intact, clock, one-way latency."""
    offset = share["clock"]
    latency = share["one_way_latency"]
    if latency["median_ns"] is None:
        oneway = f"no one-way latency: {latency['why_none']}"
    else:
        oneway = f"one-way latency {latency['median_ns'] / 1e3:.1f} µs ± {latency['uncertainty_ns'] / 1e3:.1f} µs"
    return (
        f"{share['host']} ({share['addr']}): {share['readers']} readers, ports {share['ports'][0]}-{share['ports'][1]}, "
        f"{share['delivered']} of {share['expected']} delivered, {share['intact']} intact; clock offset "
        f"{offset['offset_ns'] / 1e3:+.1f} µs ± {offset['uncertainty_ns'] / 1e3:.1f} µs; {oneway}"
    )
