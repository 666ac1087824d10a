"""One replay: a capture (or frames from Python) sent through a link-header writer in a sandbox,
on a schedule, its UDP flows rewritten onto readers that check every datagram (``rawpacer replay``,
and ``send()`` for Python; docs/replay.md).

The file is read twice, both times streamed: once before anything exists (frames, flows, and
every refusal: empty, truncated, a frame too big under strict fit), once while sending. The
sandbox is ``rig.sandbox``'s, so lo, veth, a router with its DUT, or two real ports all work.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rawpacer import diagnose, outputs
from rawpacer.bench import rig
from rawpacer.bench.config import Config, PathOptions, make_config
from rawpacer.bench.oploop import engine_core
from rawpacer.bench.replaypacing import PacingStream
from rawpacer.bench.replayplan import (
    Chunk,
    Counts,
    Plan,
    Source,
    Timing,
    ahead,
    parse_limit,
    parse_loops,
    scan,
)
from rawpacer.errors import require
from rawpacer.headers.fit import max_payload
from rawpacer.host.placement import Placement, parse_cpu
from rawpacer.kernel import caps
from rawpacer.kernel.linkstats import link_stats
from rawpacer.limits import FIRST_PORT, MAX_MESSAGE_SIZE, MAX_MTU
from rawpacer.pacing import Pacer
from rawpacer.pacing.fed import FedSchedule
from rawpacer.readers.replay import Received, ReplayReaders
from rawpacer.readers.replaymatch import FlowVerdict, total
from rawpacer.readers.streammatch import WINDOW, StreamMatcher
from rawpacer.sandbox import Topology
from rawpacer.sandbox.topology import link_info
from rawpacer.traffic import LinkType, Record, Rewriter
from rawpacer.traffic.lane import CaptureFile
from rawpacer.writers import WriterOptions, get
from rawpacer.writers.base import Fit, Writer

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack for **kwargs needs Python 3.12

BATCH = 64
"""Frames handed to the writer at once at top speed (a TX ring or AF_XDP flush each)."""
SETTLE_S = 0.3
"""The readers give up once no datagram has come for this long after the last frame left."""
TAKE_EVERY_S = 0.2
"""How often a replay takes its readers' records while it sends, once it is long (``TAKE_FROM``): the
recorder then holds ~0.2 s of datagrams (24 bytes each), never the whole replay's."""
TAKE_FROM = WINDOW // 4
"""Planned datagrams (2^18) from which a replay takes its records while it sends. Judging them beside
the sender costs ~1 µs of CPU a datagram on the sender's two CPUs (measured: the pacer's own lateness
p99 0.2-1.7 ms without, 5-11 ms with, at 100k/s on a 2-vCPU VM; the kernel's receive figures the
same), so a shorter replay is judged once it has sent (its records, ~75 bytes a datagram in all:
under 20 MB); a longer one takes them as it goes, in bounded memory, long before the matcher's
horizon (``WINDOW``) could lose any, and its first take is small (from 2^20 the first take's 1M
records took a 10M-frame replay's peak to +238 MiB; from 2^18, +164 MiB)."""


@dataclass(frozen=True)
class FlowRow:
    """One flow of the replay: its number, reader port, captured destination and verdict."""

    flow: int
    port: int
    dst: str
    dport: int
    verdict: FlowVerdict


@dataclass
class ReplayResult:
    """What a replay did: frames read and sent, what fitting did, every flow's verdict and their
    total, the pacing figures from kernel receive timestamps, the pacer's record, the interfaces'
    counters. ``ok`` when every datagram arrived intact, once and in order."""

    source: str
    writer: str
    topology: str
    timing: Timing
    loops: int
    rewrite: bool
    fit: str
    sent: int
    counts: Counts
    unsupported: dict[str, int]
    flows: list[FlowRow]
    total: FlowVerdict
    pacing: dict[str, Any] | None
    pacer: dict[str, Any] | None
    interfaces: dict[str, int]
    duration_s: float
    why: str | None = None
    notes: list[str] = field(default_factory=list)
    placement: Placement | None = None
    """Where the sender ran (``--cpu``), or None when the scheduler placed every thread."""
    timeline: tuple[np.ndarray, np.ndarray] | None = None
    """A systematic subsample (at most ``replaypacing.TIMELINE_POINTS``) of the datagrams that arrived
    intact, in arrival order: kernel RX times and scheduled offsets (ns), for plots; not in the JSON."""

    @property
    def ok(self) -> bool:
        """Every rewritten datagram arrived intact, once, in order (true without readers)."""
        return self.total.ok

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "source": self.source,
            "writer": self.writer,
            "topology": self.topology,
            "timing": self.timing.as_dict(),
            "loops": self.loops,
            "rewrite": self.rewrite,
            "fit": self.fit,
            "sent": self.sent,
            "counts": vars(self.counts),
            "unsupported": self.unsupported,
            "flows": [
                {"flow": f.flow, "port": f.port, "dst": f.dst, "dport": f.dport, **f.verdict.as_dict()}
                for f in self.flows
            ],
            "total": self.total.as_dict(),
            "ok": self.ok,
            "pacing": self.pacing,
            "pacer": self.pacer,
            "interfaces": self.interfaces,
            "duration_s": self.duration_s,
            "why": self.why,
            "notes": self.notes,
            "cpu": None if self.placement is None else self.placement.as_dict(),
        }


def expected_mtu(config: Config) -> int:
    """The MTU frames will meet, known before the sandbox exists (for strict fit's refusal)."""
    if config.tx_iface is not None:
        return int(link_info(config.tx_iface)[1])
    if config.mtu is not None:
        return config.mtu
    return MAX_MTU if config.topology == "lo" else 1500


def file_source(path: str | os.PathLike[str]) -> Source:
    """A capture file, opened afresh for each pass (its records, or its chunks: ``CaptureFile``)."""
    return CaptureFile(path)


def _link_of(frame: object) -> LinkType:
    """A Python frame's link type: raw IP for scapy's and dpkt's IP/IPv6 layers, else Ethernet."""
    return LinkType.RAW if type(frame).__name__ in ("IP", "IPv6", "IP6") else LinkType.ETHERNET


def objects_source(frames: Iterable[Any]) -> tuple[Source, bool]:
    """Records from bytes, scapy packets or dpkt objects (held in a list: a generator runs once),
    and whether they carry capture times (scapy's ``time``)."""
    held = []
    timed = True
    for index, frame in enumerate(frames):
        stamp = getattr(frame, "time", None)
        timed = timed and stamp is not None
        data = bytes(frame)
        ns = round(float(stamp) * 1e9) if stamp is not None else 0
        held.append(Record(index, ns, _link_of(frame), data, len(data)))
    return (lambda: iter(held)), timed


def _counter(topo: Topology, side: str, ifname: str, key: str) -> int:
    with topo.enter(side):
        return link_stats().get(ifname, {}).get(key, 0)


def send_plan(
    writer: Writer, plan: Plan, timing: Timing, placement: Placement | None = None
) -> tuple[int, dict[str, Any] | None]:
    """Every chunk through the writer: at top speed BATCH frames at a time, else each frame when the
    pacer says it is due (absolute deadlines from one anchor), the chunks planned by a thread ahead
    of the sends (``ahead``), on the other CPUs when ``placement`` pins the sender. Frames sent, and
    the pacer's record."""
    sending = placement.sending() if placement is not None else contextlib.nullcontext()
    with contextlib.closing(ahead(plan.chunks(), placement=placement)) as chunks, sending:
        return _send_chunks(writer, chunks, timing)


def _send_chunks(writer: Writer, chunks: Iterator[Chunk], timing: Timing) -> tuple[int, dict[str, Any] | None]:
    sent = 0
    if timing.kind == "topspeed":
        for chunk in chunks:
            in_c = writer.send_pool(chunk.data, chunk.at.tolist(), chunk.lengths.tolist(), None)
            if in_c is not None:  # the chunk left from the engine, a batch a call
                sent += in_c
                continue
            frames = chunk.frames
            for at in range(0, len(frames), BATCH):
                sent += writer.send_frames(frames[at : at + BATCH])
        return sent, None
    schedule = FedSchedule()
    pacer = Pacer(schedule, **timing.pacer_args())
    core = engine_core(pacer)
    wait, send = pacer.wait, writer.send_frames
    for chunk in chunks:
        assert chunk.offsets is not None
        schedule.feed(chunk.start, chunk.offsets)
        in_c = None if core is None else writer.send_pool(chunk.data, chunk.at.tolist(), chunk.lengths.tolist(), core)
        if in_c is not None:  # the chunk left from the engine, paced by the pacer's C core
            sent += in_c
            pacer.implementation = "c-loop"
            continue
        for k, frame in enumerate(chunk.frames):
            wait(chunk.start + k)
            sent += send((frame,))
    return sent, pacer.report().as_dict()


class Judging:
    """A replay judged as its records come (``feed``: a take, or the final collection): every flow
    by ``matcher`` (fed the expected datagrams by the plan), the intact arrivals' pairs into the
    pacing figures, so memory holds the matcher's horizon and one take, whatever the length."""

    def __init__(self, matcher: StreamMatcher, ports: Sequence[int]) -> None:
        self.matcher, self.ports = matcher, ports
        self.pacing = PacingStream()
        self.socket_drops = 0
        self.batches = 0
        """Batches fed so far (takes, and the final collection)."""

    def feed(self, received: Received) -> None:
        """One batch of records, in arrival order."""
        self.socket_drops = max(self.socket_drops, received.socket_drops)  # the sockets' counters, cumulative
        self.batches += 1
        by_slot = np.argsort(received.slot, kind="stable")  # each flow's arrivals together, still in arrival order
        slots = received.slot[by_slot]
        bounds = np.searchsorted(slots, np.arange(len(self.ports) + 1))
        rx_parts: list[np.ndarray] = [np.zeros(0, np.int64)]
        due_parts: list[np.ndarray] = [np.zeros(0, np.int64)]
        for flow in np.unique(slots).tolist():
            mine = by_slot[bounds[flow] : bounds[flow + 1]]
            pairs = self.matcher.arrive(flow, received.digest[mine], received.rx_ns[mine])
            rx_parts.append(pairs.rx_ns)
            due_parts.append(pairs.due_ns)
        rx, due = np.concatenate(rx_parts), np.concatenate(due_parts)
        order = np.argsort(rx, kind="stable")
        self.pacing.add(rx[order], due[order])

    def verdict(
        self, described: dict[int, tuple[str, int]]
    ) -> tuple[list[FlowRow], dict[str, Any], tuple[np.ndarray, np.ndarray]]:
        """Every flow's row (``described``: its captured destination), the pacing figures, and the
        timeline (a bounded subsample of the intact arrivals' receive times and due offsets)."""
        rows = [
            FlowRow(flow, self.ports[flow], *described.get(flow, ("?", 0)), verdict)
            for flow, verdict in self.matcher.verdicts().items()
        ]
        return rows, self.pacing.stats(), self.pacing.timeline()


@contextlib.contextmanager
def taking(
    readers: ReplayReaders, judging: Judging, every: float = TAKE_EVERY_S, placement: Placement | None = None
) -> Iterator[None]:
    """While the body runs, a thread takes the readers' records every ``every`` s and judges them
    once ``TAKE_FROM`` datagrams are planned (numpy and the recorder's socket: the sender's C loop
    runs meanwhile, it releases the GIL); on the CPUs the sender leaves when ``placement`` pins it."""
    stop = threading.Event()
    failed: list[BaseException] = []

    def take() -> None:
        if placement is not None:
            placement.elsewhere()
        while not stop.wait(every):
            if judging.matcher.planned < TAKE_FROM:
                continue
            try:
                judging.feed(readers.take())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
                failed.append(exc)
                return

    thread = threading.Thread(target=take, name="rawpacer-replay-take", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    if failed:
        raise failed[0]


def run(
    source: Source,
    name: str,
    config: Config,
    timing: Timing,
    *,
    loops: int = 1,
    limit: int | None = None,
    rewrite: bool = True,
    timed: bool = True,
    placement: Placement | None = None,
    say: Callable[[str], object] = lambda line: None,
) -> ReplayResult:
    """One replay (every value already checked): scan, sandbox, readers, writer, send, judge;
    ``placement`` pins the sender to one CPU and the rest (readers, planning, judging) to the others."""
    require(
        rewrite or config.tx_iface is not None,
        "without --rewrite frames leave exactly as captured, which only --tx-iface allows; add --rewrite",
    )
    require(timed or timing.kind != "captured", "the frames carry no capture times; give a rate or top speed")
    chosen = get(name)
    require(
        chosen.raw and getattr(chosen, "ethernet", False),
        f"{name} cannot send prebuilt frames (it does not build the link header); use packet-raw, packet-ring, xdp or scapy",
    )
    fit = config.fit.value
    found = scan(source, expected_mtu(config), fit, limit)
    caps.require("replay", caps.EVERYTHING, "replay")
    with rig.sandbox(config) as topo:
        readers = ReplayReaders(topo, max(1, found.flows)) if rewrite else None
        judging = None
        try:
            if readers is not None and placement is not None:
                placement.elsewhere(readers.pid)
            ports = readers.ports if readers is not None else (FIRST_PORT,)
            target = topo.target(ports, vlan_priority=config.vlan_priority)
            mtu = target.link.mtu
            size = max(0, min(MAX_MESSAGE_SIZE, max_payload(mtu, target.ip_version), found.largest))
            options = WriterOptions(message_size=size, fit=Fit.TRIM, allow_iface=topo.allow_iface)
            with topo.enter("writer"):
                writer = chosen(target, options)
            rewriter = Rewriter.for_target(target) if rewrite else None
            plan = Plan(source, found, timing, mtu=mtu, fit=fit, loops=loops, limit=limit, rewriter=rewriter)
            if readers is not None:
                judging = Judging(StreamMatcher(), ports)
                plan.expected.matcher = judging.matcher
            say(
                f"replay: {found.frames} frames x {loops}, {found.flows} UDP flows, {name} on {topo.kind} "
                f"({target.src_ip} -> {target.dst_ip}), MTU {mtu}, fit {fit}, {timing.describe()}"
                + ("" if placement is None else f", sending from CPU {placement.sender} alone")
            )
            before = diagnose.snapshot_of(topo) if readers is not None else None
            tx0 = _counter(topo, "writer", topo.writer_if, "tx_packets")
            rx0 = _counter(topo, "reader", topo.reader_if, "rx_packets")
            started = time.perf_counter()
            judged = (
                taking(readers, judging, TAKE_EVERY_S, placement) if readers and judging else contextlib.nullcontext()
            )
            with writer, judged:
                sent, pacer = send_plan(writer, plan, timing, placement)
                notes = writer.notes()
            duration = time.perf_counter() - started
            if readers is not None and judging is not None:
                judging.feed(readers.collect(SETTLE_S))
            interfaces = {
                "writer_tx_packets": _counter(topo, "writer", topo.writer_if, "tx_packets") - tx0,
                "reader_rx_packets": _counter(topo, "reader", topo.reader_if, "rx_packets") - rx0,
            }
            rows, pacing, timeline = judging.verdict(plan.expected.flows) if judging is not None else ([], None, None)
            overall = total(r.verdict for r in rows)
            why = None
            if before is not None and overall.lost:
                why = diagnose.explain(before, diagnose.snapshot_of(topo), lost=overall.lost)
            if judging is not None and judging.socket_drops:
                notes.append(f"{judging.socket_drops} datagrams dropped at the reader sockets")
        finally:
            if readers is not None:
                readers.close()
    return ReplayResult(
        source="",
        writer=name,
        topology=topo.kind,
        timing=timing,
        loops=loops,
        rewrite=rewrite,
        fit=fit,
        sent=sent,
        counts=plan.counts,
        unsupported=dict(rewriter.unsupported) if rewriter is not None else {},
        flows=rows,
        total=overall,
        pacing=pacing,
        pacer=pacer,
        interfaces=interfaces,
        duration_s=duration,
        why=why,
        notes=notes,
        placement=placement,
        timeline=timeline,
    )


def send(
    frames: Any,
    *,
    writer: str = "packet-raw",
    timing: str | None = None,
    speed: float | str | None = None,
    rate: float | str | None = None,
    topspeed: bool = False,
    spin: str | None = None,
    catch_up: str | float | None = None,
    loop: int | str = 1,
    limit: int | str | None = None,
    rewrite: bool = True,
    topology: str = "lo",
    mtu: int | str | None = None,
    fit: str = "trim",
    ip_version: int = 4,
    vlan: int | str | None = None,
    vlan_priority: int | str = 0,
    cpu: int | str | None = None,
    json: str | os.PathLike[str] | None = None,
    **path: Unpack[PathOptions],
) -> ReplayResult:
    """``rawpacer replay`` from Python: ``frames`` is a capture's path, one frame (bytes, a scapy
    packet, a dpkt object) or an iterable or generator of them; the options are the CLI's, checked
    before anything is created (UsageError, one line). Frames without capture times (bytes, dpkt)
    need ``rate`` or ``topspeed``; scapy packets carry theirs."""
    config = make_config(
        writers=writer,
        fit=fit,
        topology=topology,
        mtu=mtu,
        ip_version=ip_version,
        vlan=vlan,
        vlan_priority=vlan_priority,
        **path,
    )
    chosen = Timing.parse(timing, speed, rate, topspeed, spin, catch_up)
    loops, most = parse_loops(loop), parse_limit(limit)
    placement = parse_cpu(cpu)
    if json is not None:
        outputs.check("json", json)
    if isinstance(frames, (str, os.PathLike)):
        source, timed, label = file_source(frames), True, str(frames)
    else:
        one = isinstance(frames, (bytes, bytearray)) or hasattr(frames, "__bytes__")
        source, timed = objects_source([frames] if one else frames)
        label = "python"
    result = run(
        source,
        config.writers[0],
        config,
        chosen,
        loops=loops,
        limit=most,
        rewrite=rewrite,
        timed=timed,
        placement=placement,
    )
    result.source = label
    if json is not None:
        written = write_json(result, json)
        if not written.ok:
            warnings.warn(written.message("the JSON"), stacklevel=2)
    return result


def write_json(result: ReplayResult, path: str | os.PathLike[str]) -> outputs.Written:
    """The result as JSON at ``path`` (or its fallback, said in the returned ``Written``)."""
    text = jsonlib.dumps(result.as_dict(), indent=2, default=str)
    return outputs.write(path, lambda p: p.write_text(text), suffix=".json")
