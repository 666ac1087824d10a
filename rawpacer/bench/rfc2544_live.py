"""RFC 2544 on a live kernel path: each writer, in a sandbox, as the ``Device`` the searches drive.

A trial is a stream (``OpLoop.stream``): paced at the trial's rate by the pacer, or a back-to-back
burst with nothing paced; datagram j goes to reader j % P, so a trial is rounded up to whole fan-outs.
Trial hygiene (RFC 2544 section 23; what TRex and CSIT users learned): a warm-up at the same rate
goes first and is not counted; the stream ends only after waiting ``drain_s`` for late datagrams;
the readers' counters are read after that, never mid-run. Latency (26.2) is the kernel receive
timestamp less the departure: the kernel's software TX timestamp of a sample of the datagrams
("kernel-tx") on writers that send every datagram in order on one socket (``Writer.stamping_socket``),
else the writer's clock read just before each send ("writer-clock").
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rawpacer import diagnose, host, outputs
from rawpacer.bench import rig
from rawpacer.bench.config import Config, PathOptions, make_config
from rawpacer.bench.oploop import ASAP, Departures, OpLoop, Outcome
from rawpacer.bench.rfc2544_suite import Device, FrameSize, Recorder, Run, Settings, Trial, TrialResult, make_settings
from rawpacer.bench.rfc2544_suite.options import (
    DEFAULT_B2B_REPEATS,
    DEFAULT_LOSS_STEP,
    DEFAULT_PDR,
    DEFAULT_RESOLUTION,
    DEFAULT_TRIAL_S,
    DEFAULT_WARMUP_S,
    names_a_mix,
)
from rawpacer.bench.rfc2544_suite.suite import new_run, run_suite
from rawpacer.bench.rfc2544_suite.trial import ONE_PAUSE
from rawpacer.bench.session import shaped
from rawpacer.bench.shaping import ShapeSpec, can_shape, shapers
from rawpacer.errors import require
from rawpacer.kernel import caps, timestamping
from rawpacer.kernel.timestamping import TxStamps
from rawpacer.pacing import ConstantSchedule, Pacer
from rawpacer.remote.readerset import AnyReaders, RemoteReaderSet
from rawpacer.sandbox import Topology
from rawpacer.writers import base as registry
from rawpacer.writers.base import Fit, Writer, WriterOptions

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack for **kwargs needs Python 3.12

DEPARTURES_PER_S = 10_000
"""Paced trials above this many datagrams/s leave in bursts of ⌈rate / 10,000⌉, one every 100 µs:
one send call per datagram costs a batching writer (sendmmsg, the TX ring, AF_XDP) the rate it is
being asked for (measured: at 300k/s, bursts of 8 left xdp 15 % and packet-ring 29 % short, bursts
of 20-50 held the rate), and the RFC's question is the kernel's receive path, not the call rate."""

MAX_RATE_S = 0.5
"""How long each unpaced stream that measures a writer's maximum lasts (after a short probe)."""
MAX_RATE_STREAMS = 3
"""The writer's maximum is the median of this many such streams: one stream's rate varies by 10 %
from run to run on a shared 2-core VM, and every search is scaled from this figure."""
PROBE_FANOUTS = 20
"""The probe that sizes the maximum-rate stream."""


class RecordedDepartures:
    """Departures that note when each one left (the writer's clock, just before its send) and, given
    ``stamps``, have the kernel stamp every ``every``-th departure's datagrams as they leave."""

    def __init__(self, inner: Departures, departures: int, stamps: TxStamps | None = None, every: int = 1) -> None:
        self.inner = inner
        self.left_ns: npt.NDArray[np.int64] = np.zeros(departures, np.int64)
        self.stamps = stamps
        self.every = every
        self.stamped: list[int] = []

    @property
    def burst(self) -> int | None:
        """The inner departures' burst."""
        return self.inner.burst

    def start(self) -> None:
        """Anchor the inner departures."""
        self.inner.start()

    def wait(self, departure: int) -> None:
        """Wait as the inner departures do, switch the kernel's stamping on or off, then note the time."""
        self.inner.wait(departure)
        if self.stamps is not None:
            chosen = departure % self.every == 0
            self.stamps.record(chosen)
            if chosen:
                self.stamped.append(departure)
        self.left_ns[departure] = time.monotonic_ns()

    def kernel_tx_ns(self, datagrams: int, burst: int) -> npt.NDArray[np.int64] | None:
        """Each datagram's kernel TX stamp (0 where none was asked for), or None (see ``stamps_by_datagram``)."""
        if self.stamps is None:
            return None
        keys, times = self.stamps.collect()
        return stamps_by_datagram(self.stamped, burst, datagrams, keys, times)


def stamps_by_datagram(
    stamped: Sequence[int], burst: int, datagrams: int, keys: npt.NDArray[np.int64], times: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64] | None:
    """Place the kernel's TX stamps: stamp ``keys[i]`` is the keys[i]-th datagram sent while stamping
    was on, i.e. of the ``stamped`` departures' bursts in order (the last one may be short of
    ``burst``). Return each of the ``datagrams``' stamp (0: not stamped), or None when the stamps do
    not match those datagrams one for one (the error queue overflowed, a send was refused)."""
    chosen = [np.arange(d * burst, min((d + 1) * burst, datagrams)) for d in stamped]
    sent = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    if sent.size == 0 or keys.size != sent.size or not np.array_equal(np.sort(keys), np.arange(sent.size)):
        return None
    found = np.zeros(datagrams, np.int64)
    found[sent[keys]] = times
    return found


def latencies(
    slot: npt.NDArray[np.int32],
    rx_ns: npt.NDArray[np.int64],
    sent_ns: npt.NDArray[np.int64],
    ports: int,
    per: int = 1,
) -> npt.NDArray[np.int64]:
    """One-way latency per datagram: the k-th arrival on reader p is datagram k*P + p (a socket keeps
    order), which left at ``sent_ns[(k*P + p) // per]`` (``per``: datagrams per entry, a departure's
    burst or 1), on the receive stamps' clock. Datagrams without an entry, or whose entry is 0 (not
    stamped), are left out."""
    order = np.lexsort((rx_ns, slot))
    sorted_slot = slot[order]
    first = np.searchsorted(sorted_slot, sorted_slot, side="left")
    entry = ((np.arange(order.size) - first) * ports + sorted_slot) // per
    keep = entry < sent_ns.size
    keep[keep] = sent_ns[entry[keep]] > 0
    found: npt.NDArray[np.int64] = rx_ns[order][keep] - sent_ns[entry[keep]]
    return found


def across_hosts(
    latency: npt.NDArray[np.int64], readers: RemoteReaderSet, notes: tuple[str, ...]
) -> tuple[npt.NDArray[np.int64] | None, tuple[str, ...]]:
    """Latencies whose arrivals are on another host's clock (moved onto ours by the measured offset):
    kept with a note of the offset's uncertainty, or dropped when that uncertainty is as large as
    their median (the clocks cannot tell the figure)."""
    bound = max(s.offset.uncertainty_ns for s in readers.shares)
    median = float(np.median(latency)) if latency.size else 0.0
    if median <= bound:
        why = f"no one-way latency: the clock offset's uncertainty ({bound / 1e3:.1f} µs) is not below the median ({median / 1e3:.1f} µs)"
        return None, (*notes, why)
    return latency, (*notes, f"one-way latency across hosts, ± {bound / 1e3:.1f} µs (clock offset uncertainty)")


@dataclass
class _Frame:
    """What one frame size needs open: its readers, writer and op loop."""

    frame: FrameSize
    readers: AnyReaders
    writer: Writer
    loop: OpLoop

    def close(self) -> None:
        self.writer.close()
        self.readers.close()


@dataclass
class LiveDevice:
    """One writer sending into ``readers`` kernel UDP readers of a sandbox, per RFC 2544 frame size."""

    name: str
    topo: Topology
    readers_count: int
    payload: str = "crypto"
    config: Config | None = None
    """The run's config: where the readers are (``--remote``) and how writers reach them."""
    _open: _Frame | None = None
    _max: dict[str, float] = field(default_factory=dict)

    @property
    def writer(self) -> str:
        """The writer's name."""
        return self.name

    def _frame(self, frame: FrameSize) -> _Frame:
        """The readers, writer and loop for ``frame`` (the previous frame size's are closed)."""
        if self._open is not None and self._open.frame == frame:
            return self._open
        self.close()
        size = frame.payload_bytes
        config = self.config or Config(writers=(self.name,), payload=self.payload)
        readers = rig.readers(config, self.topo, self.readers_count, size=size)
        try:
            options = WriterOptions(message_size=size, fit=Fit.STRICT, allow_iface=self.topo.allow_iface)
            writer = rig.open_writer(config, self.topo, readers, registry.get(self.name), options)
        except BaseException:
            readers.close()
            raise
        source = rig.source(config, readers, size)
        if frame.mix is not None:  # a size mix's row: every trial sends the mix's pool (and any --vary)
            config = dataclasses.replace(
                config, shape=dataclasses.replace(config.shape or ShapeSpec(), sizes=frame.mix)
            )
        loop = OpLoop(writer, readers, source, shape=shaped(config, writer, readers, source))
        self._open = _Frame(frame, readers, writer, loop)
        return self._open

    def max_rate(self, frame: FrameSize) -> float:
        """The writer's unpaced stream rate for this frame size: the median of three ~0.5 s streams
        (a short probe sizes them)."""
        if frame.label not in self._max:
            loop = self._frame(frame).loop
            loop.departures = ASAP
            probe = loop.stream(PROBE_FANOUTS)
            rate = probe.sent * 1e9 / max(probe.elapsed_ns, 1)
            fanouts = max(PROBE_FANOUTS, math.ceil(rate * MAX_RATE_S / len(loop.readers.ports)))
            rates = [
                (o.sent * 1e9 / max(o.elapsed_ns, 1)) for o in (loop.stream(fanouts) for _ in range(MAX_RATE_STREAMS))
            ]
            self._max[frame.label] = statistics.median(rates)
        return self._max[frame.label]

    def run(self, trial: Trial) -> TrialResult:
        """Warm up (not counted), offer the trial, wait ``drain_s`` for late datagrams, then count."""
        opened = self._frame(trial.frame)
        loop, ports = opened.loop, len(opened.readers.ports)
        if trial.warmup_s > 0:
            self._stream(loop, trial, math.ceil(self._rate(trial) * trial.warmup_s / ports), settle=0.05)
        fanouts = math.ceil(trial.planned / ports)
        before, host_before = diagnose.snapshot_of(self.topo), host.sample([opened.readers.pid])
        offset = time.time_ns() - time.monotonic_ns()
        outcome, departures = self._stream(loop, trial, fanouts, settle=trial.drain_s, stamp=True)
        host_after = host.sample([opened.readers.pid])
        result = outcome.result
        counts = result.counts
        notes: tuple[str, ...] = ()
        after = diagnose.snapshot_of(self.topo)
        if counts.lost or counts.corrupt:
            notes = (f"why datagrams were lost: {diagnose.explain(before, after, lost=counts.lost)}",)
        if counts.reordered or counts.duplicate:
            notes += (result.describe(),)
        latency, source = None, None
        if trial.latency and trial.rate_pps is not None and result.arrivals is not None:
            arrivals, burst = result.arrivals, departures.burst or ports
            kernel_tx = departures.kernel_tx_ns(fanouts * ports, burst)
            if kernel_tx is not None:
                latency, source = latencies(arrivals.slot, arrivals.rx_ns, kernel_tx, ports), "kernel-tx"
            else:
                if departures.stamps is not None:
                    notes += ("the kernel's TX stamps did not match the stamped sends: the writer's clock was used",)
                left = departures.left_ns + offset
                latency, source = latencies(arrivals.slot, arrivals.rx_ns, left, ports, burst), "writer-clock"
        if latency is not None and isinstance(opened.readers, RemoteReaderSet):
            latency, notes = across_hosts(latency, opened.readers, notes)
        pacer = departures.inner.report() if isinstance(departures.inner, Pacer) else None
        pause_ns = pacer.stalled_ns if pacer is not None and pacer.stalls <= ONE_PAUSE else 0
        longest_stall = None if pacer is None else pacer.lateness_ns.get("max")
        return TrialResult(
            trial,
            pause_ns=pause_ns,
            sent=outcome.sent,
            delivered=counts.delivered,
            intact=counts.intact,
            lost=counts.lost,
            achieved_pps=outcome.sent * 1e9 / max(outcome.elapsed_ns, 1),
            latencies_ns=latency,
            latency_source=source,
            reader_capacity_pps=result.reader_capacity_pps,
            warmup_s=trial.warmup_s,
            drain_s=trial.drain_s,
            notes=notes,
            dut_drops=diagnose.dut_dropped_between(before, after),
            host=host.activity(host_before, host_after, longest_stall),
            duplicate=counts.duplicate,
            reordered=counts.reordered,
            reorder_extent=counts.reorder_extent if result.sequenced else None,
            sizes=outcome.sizes if trial.frame.mix is not None else None,
        )

    def _rate(self, trial: Trial) -> float:
        return trial.rate_pps if trial.rate_pps is not None else self._max.get(trial.frame.label, 1e6)

    @staticmethod
    def _stream(
        loop: OpLoop, trial: Trial, fanouts: int, settle: float, *, stamp: bool = False
    ) -> tuple[Outcome, RecordedDepartures]:
        """One stream of ``fanouts`` fan-outs as the trial asks: paced, or back to back; with ``stamp``,
        a paced latency trial on a writer that has one socket has the kernel stamp a sample of its sends."""
        ports = len(loop.readers.ports)
        inner: Departures = ASAP
        if trial.rate_pps is not None:
            burst = min(ports, max(1, math.ceil(trial.rate_pps / DEPARTURES_PER_S)))
            inner = Pacer(ConstantSchedule(trial.rate_pps, burst))
        steps = fanouts if inner.burst is None else math.ceil(fanouts * ports / inner.burst)
        sock = loop.writer.stamping_socket() if stamp and trial.latency and inner.burst is not None else None
        stamps = None if sock is None else TxStamps(sock)
        every = max(1, math.ceil(fanouts * ports / timestamping.STAMPS_PER_TRIAL))  # departures per stamped one
        departures = RecordedDepartures(inner, steps, stamps, every)
        loop.departures = departures
        return loop.stream(max(1, fanouts), timestamps=trial.latency, settle=settle), departures

    def close(self) -> None:
        """Close the open frame size's writer and readers."""
        if self._open is not None:
            opened, self._open = self._open, None
            opened.close()


@dataclass(frozen=True)
class Rfc2544Config:
    """An RFC 2544 run: where (the shared options) and what (the RFC 2544 suite's settings)."""

    config: Config
    settings: Settings
    json: str | os.PathLike[str] | None = None
    """The file the run's JSON is kept in as trials end (``rfc2544(json=...)``; the CLI saves its own)."""


def make_rfc2544_config(
    *,
    writers: str | Sequence[str] | None = None,
    readers: int | str = 100,
    topology: str = "lo",
    mtu: int | str | None = None,
    payload: str = "crypto",
    ip_version: int | str = 4,
    remote: str | None = None,
    remote_addr: str | None = None,
    vary: str | Sequence[str] | None = None,
    seed: int | str | None = None,
    sizes: str | Sequence[int | str] | None = None,
    tests: str | Sequence[str] | None = None,
    trial: str | float = DEFAULT_TRIAL_S,
    resolution: str | float = DEFAULT_RESOLUTION,
    loss_tolerance: str | float = 0.0,
    loss_step: str | float = DEFAULT_LOSS_STEP,
    b2b_repeats: int | str = DEFAULT_B2B_REPEATS,
    latency_trials: int | str = 1,
    warmup: str | float = DEFAULT_WARMUP_S,
    drain: str | float | None = None,
    search: str = "binary",
    pdr: str | float = DEFAULT_PDR,
    repeat: int | str = 1,
    json: str | os.PathLike[str] | None = None,
    **path: Unpack[PathOptions],
) -> Rfc2544Config:
    """Every option checked (UsageError, one line) before anything is created: the run's (as
    ``make_config``'s), the RFC 2544 suite's (``make_settings``'), and ``json``, the file kept up to
    date as trials end. ``writers`` defaults to every writer that can be paced (the scapy reference
    only when named; with ``vary``, every writer that sends a frame pool). ``vary``: ``--vary`` for
    every trial's stream (docs/traffic.md)."""
    link_header = path.get("tx_iface") is not None  # only writers that build the link header choose the interface
    default = [n for n in registry.names(slow=False) if not link_header or registry.get(n).tags_vlan]
    if remote is not None and not link_header:  # to a remote host without --tx-iface: the writers the kernel routes
        default = [n for n in default if not registry.get(n).tags_vlan]
    if vary or names_a_mix(sizes):
        default = [n for n in default if can_shape(n)]
    chosen = writers if writers is not None else default
    config = make_config(
        writers=chosen,
        readers=readers,
        topology=topology,
        mtu=mtu,
        payload=payload,
        ip_version=ip_version,
        remote=remote,
        remote_addr=remote_addr,
        mode="stream",  # every trial is a stream
        vary=vary,
        seed=seed,
        **path,
    )
    require(len(config.readers) == 1, f"readers {readers!r}: give one count (a sweep is compare's)")
    if json is not None:
        outputs.check("json", json)
    settings = make_settings(  # in make_settings' order, which tests/unit/test_api.py holds these to
        sizes, tests, trial, resolution, loss_tolerance, loss_step, b2b_repeats, latency_trials, warmup, drain,
        search, pdr, repeat, ipv6=config.ip_version == 6, mtu=config.egress_mtu or config.mtu,
    )  # fmt: skip
    require(
        config.shape is None or "latency" not in settings.tests,
        "--vary: a varied trial leaves from a frame pool, whose sends the latency test cannot stamp; "
        "give --tests throughput,loss,back-to-back",
    )
    if any(f.mix is not None for f in settings.sizes):
        plain = [n for n in config.writers if not can_shape(n)]
        require(
            not plain, f"--sizes: a size mix's row sends a frame pool, which {', '.join(plain)} cannot; use {shapers()}"
        )
        require(
            "latency" not in settings.tests,
            "--sizes: a size mix's trials leave from a frame pool, whose sends the latency test cannot stamp; "
            "give --tests throughput,loss,back-to-back",
        )
        require(
            not config.remote, "--sizes: readers on other hosts do not count per size yet; drop --remote or the mix"
        )
    named = config.writers if writers is not None else ()
    return Rfc2544Config(dataclasses.replace(config, named=named), settings, json)


def devices(topo: Topology, run: Rfc2544Config) -> Iterator[Device]:
    """One LiveDevice per writer, opened as the suite reaches it and closed after."""
    for name in run.config.writers:
        device = LiveDevice(name, topo, run.config.readers[0], run.config.payload, run.config)
        try:
            yield device
        finally:
            device.close()


def run_rfc2544(run: Rfc2544Config, recorder: Recorder | None = None) -> Run:
    """The whole suite in one fresh sandbox; ``recorder`` (with a path) keeps the JSON as trials end."""
    config = run.config
    caps.require("an RFC 2544 run", caps.EVERYTHING, "rfc2544")
    if recorder is None:
        recorder = Recorder(new_run_for(run))
    with rig.sandbox(config) as topo:
        return run_suite(devices(topo, run), run.settings, recorder)


def new_run_for(run: Rfc2544Config) -> Run:
    """The empty Run of an RFC 2544 run: the machine, the environment and every parameter."""
    params = run.config.params()
    keys = ["writers", "topology", "mtu", "payload", "ip_version", "egress_mtu", "dut", "dut_setup", "tx_iface"]
    keys += ["rx_iface", "remote", "remote_addr", "vary", "vary_seed"]
    made = new_run(run.settings, host.describe(), readers=run.config.readers[0], **{key: params[key] for key in keys})
    return dataclasses.replace(made, environment=host.environment())
