"""``--remote`` host specs: ``[user@]host[:port]``, several comma-separated, each with an optional
``=weight``; and how a run's reader ports are shared out over them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rawpacer.errors import UsageError, require
from rawpacer.limits import MAX_PORT

MAX_WEIGHT = 1000
_SPEC = re.compile(
    r"^(?:(?P<user>[A-Za-z_][A-Za-z0-9_.-]*)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]+))?(?:=(?P<weight>[0-9]+))?$"
)


@dataclass(frozen=True)
class Host:
    """One receiving host: whom ssh logs in as, where, and its share of the readers (``weight``)."""

    host: str
    user: str | None = None
    port: int | None = None
    weight: int = 1

    @property
    def label(self) -> str:
        """How results name it: ``host`` or ``host:port`` (the user is left out)."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def destination(self) -> str:
        """ssh's destination argument: ``[user@]host`` (an IPv6 literal without brackets)."""
        bare = self.host.strip("[]")
        return bare if self.user is None else f"{self.user}@{bare}"


def parse_hosts(text: str) -> tuple[Host, ...]:
    """``h1,user@h2:2222=3`` as Hosts; UsageError naming the bad part and the allowed form otherwise."""
    require(isinstance(text, str) and text.strip() != "", "--remote '' names no host; use [user@]host[:port]")
    hosts = []
    for part in text.split(","):
        found = _SPEC.match(part.strip())
        if found is None:
            raise UsageError(f"--remote {part.strip()!r} is not a host spec; use [user@]host[:port][=weight]")
        port = None if found["port"] is None else int(found["port"])
        require(
            port is None or 1 <= port <= MAX_PORT,
            f"--remote {part.strip()!r}: port {port} is out of range 1-{MAX_PORT}",
        )
        weight = 1 if found["weight"] is None else int(found["weight"])
        require(1 <= weight <= MAX_WEIGHT, f"--remote {part.strip()!r}: weight {weight} is out of range 1-{MAX_WEIGHT}")
        hosts.append(Host(found["host"], found["user"], port, weight))
    labels = [h.label for h in hosts]
    require(len(set(labels)) == len(labels), f"--remote {text!r} names a host twice")
    return tuple(hosts)


def shares(count: int, hosts: tuple[Host, ...]) -> list[int]:
    """Readers per host, proportional to the weights (largest remainders get the rest), each at least 1."""
    require(count >= len(hosts), f"{count} readers cannot be spread over {len(hosts)} hosts; give at least one each")
    total = sum(h.weight for h in hosts)
    exact = [count * h.weight / total for h in hosts]
    out = [max(1, int(x)) for x in exact]
    order = sorted(range(len(hosts)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    i = 0
    while sum(out) < count:
        out[order[i % len(order)]] += 1
        i += 1
    while sum(out) > count:
        largest = max(range(len(out)), key=lambda j: out[j])
        out[largest] -= 1
    return out
