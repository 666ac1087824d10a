"""A whole compare run: one sandbox, a reader set per readers count, every writer in turn, N rounds.

Every writer (and the Go seed) meets the same reader set, rounds are interleaved
(w1, w2, ..., w1, w2, ...) so drift on a noisy machine spreads over all writers alike.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rawpacer import diagnose, outputs
from rawpacer.bench import gobench
from rawpacer.bench.calibrate import Benchtime, parse_benchtime
from rawpacer.bench.oploop import OpLoop
from rawpacer.bench.result import Report, WriterResult
from rawpacer.bench.runner import Pass
from rawpacer.errors import ReaderDied, UsageError, require, unavailable
from rawpacer.kernel import caps
from rawpacer.limits import MAX_MESSAGE_SIZE, MAX_MTU, MAX_PORT, MAX_READERS, MIN_MESSAGE_SIZE, MIN_MTU
from rawpacer.messages import KINDS as PAYLOADS
from rawpacer.messages import MessageSource
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import KINDS, Sandbox, Topology
from rawpacer.target import Target
from rawpacer.writers import base as registry
from rawpacer.writers.base import Fit, WriterOptions

GO_MAX_READERS = 5000
"""Above this the Go seed's goroutine-per-reader blocking recvfrom hits Go's 10,000-thread limit."""

MODES = ("fanout", "stream")


@dataclass(frozen=True)
class Config:
    """What to compare, validated by the CLI before any namespace exists."""

    writers: tuple[str, ...]
    readers: tuple[int, ...] = (100,)
    size: int = 1500
    payload: str = "crypto"
    fit: Fit = Fit.TRIM
    mode: str = "fanout"
    topology: str = "lo"
    mtu: int | None = None
    benchtime: Benchtime = field(default_factory=Benchtime)
    count: int = 1
    with_go: bool = False
    pcap: str | None = None
    named: tuple[str, ...] = ()
    """Rows the user asked for by name (``--writers``, the Go seed with ``--with-go``): one that does
    not run makes the exit code say so; a default writer the kernel cannot run only says so in its row."""

    def params(self) -> dict[str, Any]:
        """The parameters as JSON records them."""
        return {
            "writers": list(self.writers),
            "readers": list(self.readers),
            "size": self.size,
            "payload": self.payload,
            "fit": self.fit.value,
            "mode": self.mode,
            "topology": self.topology,
            "mtu": self.mtu,
            "benchtime": str(self.benchtime),
            "count": self.count,
            "with_go": self.with_go,
            "pcap": self.pcap,
            "slow_writer_caps_s": {
                n: cap for n in self.writers if (cap := registry.get(n).benchtime_cap_s) is not None
            },
        }

    def steps(self) -> int:
        """Progress steps: one per writer pass and one per Go run."""
        return len(self.readers) * self.count * (len(self.writers) + (1 if self.with_go else 0))


def parse_int(name: str, value: int | str, low: int, high: int) -> int:
    """An integer option given as text or number, in low..high; UsageError naming it otherwise."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UsageError(f"{name} {value!r} is not an integer; use {low}-{high}") from None
    require(low <= number <= high, f"{name} {number} is out of range; use {low}-{high}")
    return number


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    require(value in allowed, f"{name} {value!r} is not allowed; use one of: {', '.join(allowed)}")
    return value


def _names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return tuple(registry.names())
    return tuple(w.strip() for w in value.split(",")) if isinstance(value, str) else tuple(value)


def pcap_path(stem: str, writer: str, readers: int) -> str:
    """Where one raw writer's frames go: ``run.pcap`` -> ``run-packet-ring-100.pcap``."""
    root, ext = os.path.splitext(stem)
    return f"{root}-{writer}-{readers}{ext or '.pcap'}"


def make_config(
    writers: str | Sequence[str] | None = None,
    readers: int | str | Sequence[int] = 100,
    size: int | str = 1500,
    payload: str = "crypto",
    fit: str | Fit = "trim",
    mode: str = "fanout",
    topology: str = "lo",
    mtu: int | str | None = None,
    benchtime: str | float = "1s",
    count: int | str = 1,
    with_go: bool = False,
    pcap: str | None = None,
) -> Config:
    """A Config from CLI-style values (strings or numbers), every one checked: UsageError, one line."""
    counts = str(readers).split(",") if isinstance(readers, (int, str)) else list(readers)
    chosen = _names(writers)
    for name in chosen:
        registry.get(name)
    require(len(set(chosen)) == len(chosen), f"writers {writers!r} names a writer twice")
    config = Config(
        writers=chosen,
        readers=tuple(parse_int("readers", part, 1, MAX_READERS) for part in counts),
        size=parse_int("size", size, MIN_MESSAGE_SIZE, MAX_MESSAGE_SIZE),
        payload=_choice("payload", payload, PAYLOADS),
        fit=Fit.parse(fit),
        mode=_choice("mode", mode, MODES),
        topology=_choice("topology", topology, KINDS),
        mtu=None if mtu is None else parse_int("mtu", mtu, MIN_MTU, MAX_MTU),
        benchtime=parse_benchtime(str(benchtime)),
        count=parse_int("count", count, 1, 1000),
        with_go=bool(with_go),
        pcap=pcap,
        named=(chosen if writers is not None else ()) + (tuple(gobench.ROWS.values()) if with_go else ()),
    )
    if config.pcap is not None:
        require(not os.path.isdir(config.pcap), f"--pcap {config.pcap!r} is a directory; give a file name")
        for name in (n for n in chosen if registry.get(n).raw):
            for readers_count in config.readers:
                outputs.check("--pcap", pcap_path(config.pcap, name, readers_count))
    if config.with_go:
        gobench.require_go()
    return config


class Listener:
    """Told when each pass starts and ends (the CLI's progress bar); does nothing by default."""

    def start(self, label: str) -> None:
        """A writer pass (or Go run) called ``label`` begins."""

    def done(self, row: WriterResult) -> None:
        """A pass finished; ``row`` holds its new sample or its error."""


def _settle(readers: ReaderSet) -> None:
    """Close an op or stream a failed writer left open, so the next writer starts clean."""
    with contextlib.suppress(UsageError):
        readers.wait(0)
    with contextlib.suppress(UsageError):
        readers.end_stream(1)


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
        with Sandbox(config.topology, mtu=config.mtu) as topo:
            try:
                for count in config.readers:
                    self._one_count(topo, count, go_binary)
            except KeyboardInterrupt:
                self.report.interrupted = True
                self.on_interrupt(self.report)
                raise
        return self.report

    def _one_count(self, topo: Topology, count: int, go_binary: Path | None) -> None:
        config = self.config
        with ReaderSet(topo, count, config.size, timeout=1.0) as readers:
            target = topo.target(readers.ports)
            source = MessageSource.make(config.payload, config.size)
            rows = {name: self._row(name, count) for name in config.writers}
            go_rows: dict[str, WriterResult] = {}
            for _ in range(config.count):
                for name in config.writers:
                    self.listener.start(f"{name} ({count} readers)")
                    self._writer_pass(topo, target, readers, source, rows[name])
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
        self, topo: Topology, target: Target, readers: ReaderSet, source: MessageSource, row: WriterResult
    ) -> None:
        """One calibrated pass of one writer; its failure is the row's error, not the run's."""
        config = self.config
        cap = registry.get(row.writer).benchtime_cap_s
        benchtime = config.benchtime if cap is None else config.benchtime.capped(cap)
        if row.error:
            return
        writer = None
        before = diagnose.snapshot_of(topo)
        try:
            with topo.enter("writer"):
                cls = registry.get(row.writer)
                pcap = pcap_path(config.pcap, row.writer, row.readers) if config.pcap and cls.raw else None
                if pcap and pcap not in row.notes:
                    row.notes.append(f"frames written to {pcap} (timing includes the pcap writes)")
                writer = cls(target, WriterOptions(message_size=config.size, fit=config.fit, pcap=pcap))
                row.delivered_size = writer.delivered_size
                sample, notes = Pass(OpLoop(writer, readers, source), config.mode).measure(benchtime)
            row.samples.append(sample)
            row.notes.extend(n for n in notes if n not in row.notes)
            if sample.lost or sample.corrupt:
                row.notes.append(f"why datagrams were lost: {diagnose.explain(before, diagnose.snapshot_of(topo))}")
        except ReaderDied:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken writer must not end the comparison: its row says why
            missing = unavailable(exc)
            text = f"unavailable: {missing}" if missing else f"{type(exc).__name__}: {exc}"
            row.error = (text.splitlines() or ["error"])[0][:200]
            _settle(readers)
        finally:
            if writer is not None:
                writer.close()

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
