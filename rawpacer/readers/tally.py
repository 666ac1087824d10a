"""What the readers saw: per op (``OpResult``), per run (``RunTally``) and per port (``PortTally``),
each holding one ``Counts`` (``rawpacer.readers.counts``).

The counting rules live in ``rawpacer.readers.core`` (the pure counting core); these are the
records it fills, with what the reader process measured around it: socket drops, its CPU and
busy time, and (when asked for) every datagram's kernel receive timestamp (``Arrivals``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, overload

from rawpacer.errors import DeliveryError
from rawpacer.readers.counts import Counts

if TYPE_CHECKING:  # the reader process fills these records without numpy; only ``Arrivals`` needs it
    import numpy as np
    import numpy.typing as npt

SHOWN_PORTS = 5


@dataclass(frozen=True)
class PortTally:
    """One reader port's counts (one op's deviations, or a whole run)."""

    port: int
    counts: Counts = field(default_factory=Counts)

    def to_dict(self) -> dict[str, int]:
        """The JSON form: the port and its counts."""
        return {"port": self.port, **self.counts.to_dict()}

    def as_row(self) -> tuple[int, ...]:
        """The port and its counts in declaration order (the wire form; ``from_row`` reads it back)."""
        return (self.port, *self.counts.as_row())

    @classmethod
    def from_row(cls, row: Sequence[int]) -> PortTally:
        """The PortTally ``as_row`` wrote."""
        return cls(row[0], Counts(*row[1:]))


@dataclass(frozen=True)
class Arrivals:
    """Every datagram one op or stream received, with its kernel receive timestamp; arrays, no object each.

    One entry per datagram the readers took while the op was open (intact, duplicate and corrupt
    alike; late ones between ops are not included), in the order the reader took them off its
    sockets: socket by socket in batches, so ``in_arrival_order()`` sorts them by ``rx_ns``.
    """

    rx_ns: npt.NDArray[np.int64]
    """Kernel software RX timestamp (SO_TIMESTAMPNS), ns since the epoch on CLOCK_REALTIME."""
    slot: npt.NDArray[np.int32]
    """Index into ``ReaderSet.ports`` of the socket it arrived on."""
    match: npt.NDArray[np.bool_]
    """True when its bytes were its slot's expected message; False for corrupt ones."""

    def __len__(self) -> int:
        return len(self.rx_ns)

    def in_arrival_order(self) -> Arrivals:
        """The same entries sorted by kernel timestamp (stable: ties keep the reader's order)."""
        order = self.rx_ns.argsort(kind="stable")
        return Arrivals(self.rx_ns[order], self.slot[order], self.match[order])


def _port_list(ports: list[int]) -> str:
    shown = ", ".join(str(p) for p in ports[:SHOWN_PORTS])
    more = f", ... ({len(ports)} ports)" if len(ports) > SHOWN_PORTS else ""
    return shown + more


class _PortsWith:
    """A read-only attribute of OpResult: the ports whose datagrams deviated in one ``Counts`` field
    (``lost``: fewer than expected; ``corrupt``: unlike their message; ``duplicate``: more than
    expected; ``reordered``: out of order), in port order."""

    def __init__(self, count: str) -> None:
        self.count = count

    @overload
    def __get__(self, result: None, owner: type[OpResult]) -> _PortsWith: ...
    @overload
    def __get__(self, result: OpResult, owner: type[OpResult]) -> list[int]: ...
    def __get__(self, result: OpResult | None, owner: type[OpResult]) -> _PortsWith | list[int]:
        if result is None:
            return self
        return sorted(p for p, t in result.deviations.items() if getattr(t.counts, self.count))


@dataclass
class OpResult:
    """One op (or one stream) as the readers saw it.

    ``counts`` are the op's totals (``counts.socket_drops``: what the kernel dropped at the reader
    sockets that lost datagrams, their receive buffers full). ``deviations`` holds a ``PortTally``
    only for ports that did not get exactly their expected intact datagrams (lost, corrupt,
    duplicate or late ones); every other port was perfect. ``reader_busy_s`` is the reader's CPU time spent receiving and
    checking (idle polling excluded) and ``reader_checked`` the datagrams it took in that time;
    ``reader_first_ns``/``reader_last_ns`` (``time.monotonic_ns()`` clock, 0 when nothing came) are
    when it began taking the op's first datagrams and when it had checked its last.
    ``arrivals`` holds every datagram's kernel RX timestamp when the op began with ``timestamps``.
    ``lost_ports``, ``corrupt_ports``, ``duplicate_ports`` and ``reordered_ports`` list the ports with
    lost, corrupt, duplicate or reordered datagrams, in port order.
    """

    mode: str
    readers: int
    expected_size: int
    per_port: int
    sent: int
    counts: Counts
    timed_out: bool
    reader_cpu_s: float
    wait_s: float
    op_s: float
    deviations: dict[int, PortTally] = field(default_factory=dict)
    reader_busy_s: float = 0.0
    reader_checked: int = 0
    reader_first_ns: int = 0
    reader_last_ns: int = 0
    arrivals: Arrivals | None = None
    sequenced: bool = False
    """The datagrams carried sequences (a stream run by the op loop): reordering was measured."""
    lengths: dict[int, tuple[int, int]] = field(default_factory=dict)
    """A shaped stream's datagrams per payload length: (received, intact); empty otherwise."""

    @property
    def reordered_ratio(self) -> float | None:
        """RFC 4737 4.1's reordered ratio: reordered over intact datagrams (None when not sequenced)."""
        return reordered_ratio(self.counts.reordered, self.counts.intact) if self.sequenced else None

    @property
    def reader_capacity_pps(self) -> float | None:
        """Datagrams the reader received and checked per busy second (None when it took none)."""
        return capacity(self.reader_checked, self.reader_busy_s)

    @property
    def expected(self) -> int:
        """Datagrams the readers expected: one per port per fan-out."""
        return self.readers * self.per_port

    @property
    def ok(self) -> bool:
        """Every expected datagram arrived intact (duplicates and late ones are reported, not failures)."""
        return self.counts.lost == 0 and self.counts.corrupt == 0

    lost_ports = _PortsWith("lost")
    corrupt_ports = _PortsWith("corrupt")
    duplicate_ports = _PortsWith("duplicate")
    reordered_ports = _PortsWith("reordered")

    def describe(self) -> str:
        """One line: what went wrong, naming the first few ports."""
        parts = []
        counts = self.counts
        if counts.lost:
            lost = self.lost_ports
            why = "timed out" if self.timed_out else "missing"
            parts.append(
                f"{counts.lost} of {self.expected} datagrams lost ({why}) on {len(lost)} readers: ports {_port_list(lost)}"
            )
        if counts.corrupt:
            parts.append(f"{counts.corrupt} corrupt datagrams on ports {_port_list(self.corrupt_ports)}")
        if counts.duplicate:
            parts.append(f"{counts.duplicate} duplicates on ports {_port_list(self.duplicate_ports)}")
        if counts.reordered:
            parts.append(
                f"{counts.reordered} reordered (extent up to {counts.reorder_extent}) on ports {_port_list(self.reordered_ports)}"
            )
        if counts.socket_drops:
            parts.append(f"{counts.socket_drops} dropped by full reader socket buffers")
        return "; ".join(parts) or f"all {self.expected} datagrams intact"

    def raise_for_loss(self) -> OpResult:
        """Raise DeliveryError naming the ports unless every expected datagram arrived intact."""
        if not self.ok:
            raise DeliveryError(self.describe())
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, deviating ports included (arrivals as their count only)."""
        out: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("deviations", "counts")
        }
        out.update(
            self.counts.to_dict(),
            expected=self.expected,
            ok=self.ok,
            lost_ports=self.lost_ports,
            corrupt_ports=self.corrupt_ports,
            duplicate_ports=self.duplicate_ports,
            reordered_ports=self.reordered_ports,
            reordered_ratio=self.reordered_ratio,
            reader_capacity_pps=self.reader_capacity_pps,
            arrivals=None if self.arrivals is None else len(self.arrivals),
        )
        return out


def capacity(checked: int, busy_s: float) -> float | None:
    """Datagrams per busy second, or None when nothing was measured."""
    return checked / busy_s if busy_s > 0 and checked else None


def reordered_ratio(reordered: int, intact: int) -> float:
    """RFC 4737 4.1: reordered datagrams over the datagrams received (first copies, intact)."""
    return reordered / intact if intact else 0.0


@dataclass
class RunTally:
    """Accumulated over a run: totals, plus per port (perfect ports are derived, not stored)."""

    ports: tuple[int, ...]
    ops: int = 0
    sent: int = 0
    expected: int = 0
    counts: Counts = field(default_factory=Counts)
    timeouts: int = 0
    reader_cpu_s: float = 0.0
    reader_busy_s: float = 0.0
    reader_checked: int = 0
    sequenced_intact: int = 0
    """Intact datagrams of sequenced streams: the reordered ratio's denominator."""
    _per_port_expected: int = 0
    _deviations: dict[int, Counts] = field(default_factory=dict)
    """Per deviating port: its counts beyond the ``per_port`` intact datagrams every op expected."""

    def add(self, op: OpResult) -> None:
        """Fold one op's result in."""
        self.ops += 1
        self.timeouts += op.timed_out
        self.reader_cpu_s += op.reader_cpu_s
        self.reader_busy_s += op.reader_busy_s
        self.reader_checked += op.reader_checked
        self.sent += op.sent
        self.expected += op.expected
        self.counts += op.counts
        self.sequenced_intact += op.counts.intact if op.sequenced else 0
        self._per_port_expected += op.per_port
        for port, dev in op.deviations.items():
            extra = dev.counts._replace(
                delivered=dev.counts.delivered - op.per_port, intact=dev.counts.intact - op.per_port
            )
            self._deviations[port] = self._deviations.get(port, Counts()) + extra

    def port(self, port: int) -> PortTally:
        """The run's counts for one port."""
        base = self._per_port_expected
        dev = self._deviations.get(port, Counts())
        return PortTally(port, dev._replace(delivered=base + dev.delivered, intact=base + dev.intact))

    def per_port(self) -> list[PortTally]:
        """Every port's counts, in port order."""
        return [self.port(p) for p in self.ports]

    @property
    def reader_capacity_pps(self) -> float | None:
        """Datagrams the reader received and checked per busy second over the run."""
        return capacity(self.reader_checked, self.reader_busy_s)

    @property
    def reordered_ratio(self) -> float | None:
        """RFC 4737 4.1 over the run's sequenced streams (None when there were none)."""
        return reordered_ratio(self.counts.reordered, self.sequenced_intact) if self.sequenced_intact else None

    def to_dict(self, *, ports: bool = False) -> dict[str, Any]:
        """The JSON form (per-port counts only when ``ports``)."""
        out: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not f.name.startswith("_") and f.name not in ("ports", "counts")
        }
        out.update(self.counts.to_dict())
        out["readers"] = len(self.ports)
        out["reader_cpu_us_per_op"] = 1e6 * self.reader_cpu_s / self.ops if self.ops else 0.0
        out["reader_capacity_pps"] = self.reader_capacity_pps
        out["reordered_ratio"] = self.reordered_ratio
        out["deviating_ports"] = sorted(self._deviations)
        if ports:
            out["per_port"] = [t.to_dict() for t in self.per_port()]
        return out
