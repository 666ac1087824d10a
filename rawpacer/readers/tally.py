"""What the readers saw: per op (``OpResult``), per run (``RunTally``) and per port (``PortTally``).

Counting rules, per port and op, with ``e`` datagrams expected (1 per op, ``sent_per_port`` in a
stream), ``m`` of them matching the expected bytes and ``c`` not matching:
intact = min(m, e), duplicate = max(0, m - e), corrupt = c, delivered = m + c,
lost = max(0, e - delivered). Datagrams arriving between ops are ``late``, never ``delivered``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rawpacer.errors import DeliveryError

SHOWN_PORTS = 5


@dataclass
class PortTally:
    """Counts for one reader port (one op's deviations, or a whole run)."""

    port: int
    delivered: int = 0
    intact: int = 0
    corrupt: int = 0
    duplicate: int = 0
    lost: int = 0
    late: int = 0

    def to_dict(self) -> dict:
        """The JSON form."""
        return asdict(self)


def _port_list(ports: list[int]) -> str:
    shown = ", ".join(str(p) for p in ports[:SHOWN_PORTS])
    more = f", ... ({len(ports)} ports)" if len(ports) > SHOWN_PORTS else ""
    return shown + more


@dataclass
class OpResult:
    """One op (or one stream) as the readers saw it.

    ``deviations`` holds a ``PortTally`` only for ports that did not get exactly their expected
    intact datagrams (lost, corrupt, duplicate or late ones); every other port was perfect.
    """

    mode: str
    readers: int
    expected_size: int
    per_port: int
    sent: int
    delivered: int
    intact: int
    corrupt: int
    duplicate: int
    lost: int
    late: int
    timed_out: bool
    reader_cpu_s: float
    wait_s: float
    op_s: float
    deviations: dict[int, PortTally] = field(default_factory=dict)

    @property
    def expected(self) -> int:
        """Datagrams the readers expected: one per port per fan-out."""
        return self.readers * self.per_port

    @property
    def ok(self) -> bool:
        """Every expected datagram arrived intact (duplicates and late ones are reported, not failures)."""
        return self.lost == 0 and self.corrupt == 0

    @property
    def lost_ports(self) -> list[int]:
        """Ports that got fewer datagrams than expected."""
        return sorted(p for p, t in self.deviations.items() if t.lost)

    @property
    def corrupt_ports(self) -> list[int]:
        """Ports that got a datagram unlike their message."""
        return sorted(p for p, t in self.deviations.items() if t.corrupt)

    @property
    def duplicate_ports(self) -> list[int]:
        """Ports that got more datagrams than expected."""
        return sorted(p for p, t in self.deviations.items() if t.duplicate)

    def describe(self) -> str:
        """One line: what went wrong, naming the first few ports."""
        parts = []
        if self.lost:
            lost = self.lost_ports
            why = "timed out" if self.timed_out else "missing"
            parts.append(
                f"{self.lost} of {self.expected} datagrams lost ({why}) on {len(lost)} readers: ports {_port_list(lost)}"
            )
        if self.corrupt:
            parts.append(f"{self.corrupt} corrupt datagrams on ports {_port_list(self.corrupt_ports)}")
        if self.duplicate:
            parts.append(f"{self.duplicate} duplicates on ports {_port_list(self.duplicate_ports)}")
        return "; ".join(parts) or f"all {self.expected} datagrams intact"

    def raise_for_loss(self) -> OpResult:
        """Raise DeliveryError naming the ports unless every expected datagram arrived intact."""
        if not self.ok:
            raise DeliveryError(self.describe())
        return self

    def to_dict(self) -> dict:
        """The JSON form, deviating ports included."""
        out = {k: v for k, v in asdict(self).items() if k != "deviations"}
        out.update(
            expected=self.expected,
            ok=self.ok,
            lost_ports=self.lost_ports,
            corrupt_ports=self.corrupt_ports,
            duplicate_ports=self.duplicate_ports,
        )
        return out


_COUNTS = ("delivered", "intact", "corrupt", "duplicate", "lost", "late")


@dataclass
class RunTally:
    """Accumulated over a run: totals, plus per port (perfect ports are derived, not stored)."""

    ports: tuple[int, ...]
    ops: int = 0
    sent: int = 0
    expected: int = 0
    delivered: int = 0
    intact: int = 0
    corrupt: int = 0
    duplicate: int = 0
    lost: int = 0
    late: int = 0
    timeouts: int = 0
    reader_cpu_s: float = 0.0
    _per_port_expected: int = 0
    _deviations: dict[int, PortTally] = field(default_factory=dict)

    def add(self, op: OpResult) -> None:
        """Fold one op's result in."""
        self.ops += 1
        self.timeouts += op.timed_out
        self.reader_cpu_s += op.reader_cpu_s
        self.sent += op.sent
        self.expected += op.expected
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(op, name))
        self._per_port_expected += op.per_port
        for port, dev in op.deviations.items():
            acc = self._deviations.setdefault(port, PortTally(port))
            acc.delivered += dev.delivered - op.per_port
            acc.intact += dev.intact - op.per_port
            for name in ("corrupt", "duplicate", "lost", "late"):
                setattr(acc, name, getattr(acc, name) + getattr(dev, name))

    def port(self, port: int) -> PortTally:
        """The run's counts for one port."""
        base = self._per_port_expected
        dev = self._deviations.get(port, PortTally(port))
        return PortTally(port, base + dev.delivered, base + dev.intact, dev.corrupt, dev.duplicate, dev.lost, dev.late)

    def per_port(self) -> list[PortTally]:
        """Every port's counts, in port order."""
        return [self.port(p) for p in self.ports]

    def to_dict(self, *, ports: bool = False) -> dict:
        """The JSON form (per-port counts only when ``ports``)."""
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_") and k != "ports"}
        out["readers"] = len(self.ports)
        out["reader_cpu_us_per_op"] = 1e6 * self.reader_cpu_s / self.ops if self.ops else 0.0
        out["deviating_ports"] = sorted(self._deviations)
        if ports:
            out["per_port"] = [t.to_dict() for t in self.per_port()]
        return out
