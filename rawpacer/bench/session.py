"""A whole compare run: one sandbox, a reader set per readers count, every writer in turn, N rounds.

Every writer (and the Go seed) meets the same reader set, rounds are interleaved
(w1, w2, ..., w1, w2, ...) so drift on a noisy machine spreads over all writers alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rawpacer import diagnose, host
from rawpacer.bench import gobench, rig
from rawpacer.bench.config import Config, pcap_path
from rawpacer.bench.oploop import ASAP, Interrupted, OpLoop
from rawpacer.bench.result import Report, Sample, WriterResult
from rawpacer.bench.runner import Pass, paced
from rawpacer.bench.shaping import Shaped, shape_writer
from rawpacer.diagnose import Counters
from rawpacer.errors import RawpacerError, ReaderDied, UsageError, unavailable
from rawpacer.kernel import caps
from rawpacer.limits import MAX_PORT
from rawpacer.messages import MessageSource
from rawpacer.remote.readerset import AnyReaders, RemoteReaderSet
from rawpacer.sandbox import Topology
from rawpacer.target import Target
from rawpacer.writers import base as registry
from rawpacer.writers.base import Writer, WriterOptions

DUT_LIMITED = "the DUT was the limit: its own counters dropped datagrams (DUT drops; the why note names them)"
WRITER_LIMITED = (
    "the writer was the limit, not the DUT: it forwarded all it was offered and dropped nothing; its forwarding "
    "runs on the sending CPU (a veth transmit hands the packet to the next namespace in the sender's softirq), "
    "so its cost is inside the writer's rate (docs/dut.md)"
)
"""What limited a router run's rate, said once per row: on a 2-core host the DUT shares the CPUs."""

GO_MAX_READERS = 5000
"""Above this the Go seed's goroutine-per-reader blocking recvfrom hits Go's 10,000-thread limit."""


class Listener:
    """Told when each pass starts and ends (the CLI's progress bar); does nothing by default."""

    def start(self, label: str) -> None:
        """A writer pass (or Go run) called ``label`` begins."""

    def done(self, row: WriterResult) -> None:
        """A pass finished; ``row`` holds its new sample or its error."""


def row_error(writer: str, exc: Exception) -> str:
    """What a failed pass's row says: ``unavailable: why`` when the kernel lacks it, ``refused: why``
    when the writer refused its options (a UsageError, e.g. ``--fit strict`` and a message too long),
    rawpacer's other errors as their message; only an unexpected exception is named by its class.
    One line, 200 characters at most."""
    missing = unavailable(exc)
    if missing is not None:
        text = "unavailable: " + str(missing).removeprefix(f"{writer} unavailable: ")
    elif isinstance(exc, UsageError):
        text = f"refused: {exc}"
    elif isinstance(exc, RawpacerError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return (text.splitlines() or ["error"])[0][:200]


def shaped(config: Config, writer: Writer, readers: AnyReaders, source: MessageSource) -> Shaped | None:
    """The writer's frame pool for a shaped run (``--sizes``/``--vary``), built from messages filled once now; None otherwise."""
    if config.shape is None:
        return None
    source.fill(readers.buffer)
    return shape_writer(config.shape, writer, readers.messages)


def describe_sizes(sizes: dict[int, dict[str, int]]) -> str:
    """Per-size counts in one line: ``64 B 583/583 intact of 583 sent, ...``."""
    return ", ".join(f"{s} B {c['intact']}/{c['delivered']} intact of {c['sent']} sent" for s, c in sizes.items())


def _go_port_base(ports: list[int], readers: int) -> int:
    """Ports for the Go readers that cannot collide with rawpacer's readers."""
    if max(ports) + readers + 200 <= MAX_PORT:
        return max(ports)
    return max(1024, min(ports) - readers - 200)


class Session:
    """Runs a Config into a Report; ``on_interrupt`` sees the partial report before cleanup."""

    def __init__(
        self,
        config: Config,
        report: Report,
        listener: Listener | None = None,
        on_interrupt: Callable[[Report], object] | None = None,
    ) -> None:
        self.config = config
        self.report = report
        self.listener = listener or Listener()
        self.on_interrupt = on_interrupt or (lambda report: None)

    def run(self) -> Report:
        """Every readers count, every round, every writer; the Report (partial on Ctrl-C)."""
        config = self.config
        needed = caps.EVERYTHING if any(registry.get(n).raw for n in config.writers) else caps.SANDBOX
        caps.require("a comparison", needed, "compare")
        go_binary = gobench.build() if config.with_go else None
        for name in config.writers:
            cap = registry.get(name).benchtime_cap_s
            if cap is not None and config.benchtime.ops is None and config.benchtime.seconds > cap:
                self.report.notes.append(f"{name}: benchtime capped at {cap:g}s (slow writer)")
        with rig.sandbox(config) as topo:
            try:
                for count in config.readers:
                    self._one_count(topo, count, go_binary)
            except KeyboardInterrupt:
                self.report.interrupted = True
                self.on_interrupt(self.report)
                raise
            except ReaderDied as exc:  # the readers (a remote agent, its link) went away: keep what was measured
                self.report.notes.append(f"stopped: {exc}")
                self.report.interrupted = True
                self.on_interrupt(self.report)
                raise
            finally:
                self._note_vlan_drops(topo)
        return self.report

    def _note_vlan_drops(self, topo: Topology) -> None:
        """Frames the readers' end dropped for carrying another VLAN id: counted, and said."""
        if topo.vlan_filter is not None:
            counts = topo.vlan_filter.counts()
            if counts.other_vlan:
                self.report.notes.append(f"VLAN {topo.vlan}: {counts.describe()}")

    def _one_count(self, topo: Topology, count: int, go_binary: Path | None) -> None:
        config = self.config
        with rig.readers(config, topo, count) as readers:
            source = rig.source(config, readers)
            target = None if isinstance(readers, RemoteReaderSet) else rig.local_target(config, topo, readers)
            rows = {name: self._row(name, count) for name in config.writers}
            go_rows: dict[str, WriterResult] = {}
            for _ in range(config.count):
                for name in config.writers:
                    self.listener.start(f"{name} ({count} readers)")
                    self._writer_pass(topo, readers, source, rows[name], target)
                    self.listener.done(rows[name])
                if go_binary is not None and count > GO_MAX_READERS:
                    note = f"Go seed skipped at {count} readers: one blocked OS thread per reader exceeds Go's thread limit"
                    if note not in self.report.notes:
                        self.report.notes.append(note)
                elif go_binary is not None:
                    self.listener.start(f"Go seed ({count} readers)")
                    self._go_pass(topo, go_binary, count, list(readers.ports), go_rows)
                    for row in go_rows.values():
                        self.listener.done(row)

    def _row(self, name: str, count: int) -> WriterResult:
        row = WriterResult(name, count, self.config.size, self.config.size)
        self.report.results.append(row)
        return row

    def _writer_pass(
        self, topo: Topology, readers: AnyReaders, source: MessageSource, row: WriterResult, target: Target | None
    ) -> None:
        """One calibrated pass of one writer; its failure is the row's error, not the run's."""
        config = self.config
        cap = registry.get(row.writer).benchtime_cap_s
        benchtime = config.benchtime if cap is None else config.benchtime.capped(cap)
        if row.error:
            return
        writer = None
        host_before = host.sample([readers.pid])
        if isinstance(readers, RemoteReaderSet):
            readers.new_pass()
        try:
            cls = registry.get(row.writer)
            pcap = pcap_path(config.pcap, row.writer, row.readers) if config.pcap and cls.raw else None
            if pcap and pcap not in row.notes:
                row.notes.append(f"frames written to {pcap} (timing includes the pcap writes)")
            options = WriterOptions(config.size, config.fit, pcap, allow_iface=topo.allow_iface)
            writer = rig.open_writer(config, topo, readers, cls, options, target)
            with topo.enter("writer"):
                row.delivered_size = writer.delivered_size
                pace = (
                    None
                    if config.pace is None
                    else paced(config.pace, writer, None if config.shape is None else config.shape.sizes)
                )
                shape = shaped(config, writer, readers, source)
                loop = OpLoop(writer, readers, source, ASAP if pace is None else pace.pacer, shape=shape)
                measured = Pass(loop, config.mode, pace, observe=lambda: diagnose.snapshot_of(topo))
                sample, notes = measured.measure(config.benchtime if pace else benchtime)
            sample.host = host.activity(host_before, host.sample([readers.pid]), sample.longest_stall_ns)
            row.samples.append(sample)
            if sample.sizes:
                row.notes.append(f"sizes: {describe_sizes(sample.sizes)}")
            row.facts.update(writer.facts())
            notes += writer.notes() + writer.problems()
            row.notes.extend(n for n in notes if n not in row.notes)
            if measured.window is not None:
                self._explain(topo, row, sample, *measured.window)
            if isinstance(readers, RemoteReaderSet):
                row.facts["hosts"] = readers.describe_hosts()
                if sample.counts.lost or sample.counts.corrupt:
                    row.notes.extend(f"why datagrams were lost on {why}" for why in readers.explain(sample.counts.lost))
        except Interrupted as exc:
            self.report.notes.append(f"{row.writer}: {exc}")
            raise
        except ReaderDied:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken writer must not end the comparison: its row says why
            row.error = row_error(row.writer, exc)
            readers.abort()  # whatever op or stream the failed writer left open: the next writer starts clean
        finally:
            if writer is not None:
                writer.close()

    def _explain(self, topo: Topology, row: WriterResult, sample: Sample, before: Counters, after: Counters) -> None:
        """What the counters say about the sample's run: the DUT's deltas (router), why datagrams were lost."""
        if topo.dut_ns is not None:
            sample.dut = diagnose.dut_moved(before, after)
            sample.dut_dropped = diagnose.dut_dropped_between(before, after)
            note = DUT_LIMITED if sample.dut_dropped else WRITER_LIMITED
            if note not in row.notes:
                row.notes.append(note)
        if sample.counts.lost or sample.counts.corrupt:
            row.notes.append(f"why datagrams were lost: {diagnose.explain(before, after, lost=sample.counts.lost)}")

    def _go_pass(
        self, topo: Topology, binary: Path, count: int, ports: list[int], rows: dict[str, WriterResult]
    ) -> None:
        """Both Go seed benchmarks in this sandbox, with readers of their own beside ours."""
        run = gobench.run(binary, topo, count, _go_port_base(ports, count), self.config.benchtime)
        for result in gobench.to_results(run, count):
            row = rows.get(result.writer)
            if row is None:
                row = rows[result.writer] = result
                if self.config.size != gobench.MESSAGE_SIZE or self.config.payload != "crypto":
                    row.notes.append("the Go seed always sends 1500-byte crypto/rand messages")
                self.report.results.append(row)
            else:
                row.samples.extend(result.samples)
                row.error = row.error or result.error
