"""The one interface every writer implements, and the registry that finds them.

A writer sends one fan-out: ``messages[i]`` to ``target.ports[i]`` on the readers' address.
Standard writers go through the kernel's UDP stack; raw writers hand-build the headers. Adding
a writer is adding one module to ``rawpacer/writers/`` with a class decorated ``@register``.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from rawpacer.errors import UsageError
from rawpacer.limits import MAX_MESSAGE_SIZE
from rawpacer.target import Target


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
    """Knobs shared by all writers; a writer ignores the ones that do not concern it."""

    message_size: int = 1500
    fit: Fit = Fit.TRIM
    pcap: str | None = None
    ring_frames: int = 0
    qdisc_bypass: bool = True
    threads: int = 0
    allow_iface: str | None = None

    def __post_init__(self) -> None:
        """Every knob checked where options are made, so no writer repeats the checks."""
        object.__setattr__(self, "fit", Fit.parse(self.fit))
        for name, low, high in (("message_size", 0, MAX_MESSAGE_SIZE), ("ring_frames", 0, None), ("threads", 0, None)):
            value = getattr(self, name)
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or value < low
                or (high is not None and value > high)
            ):
                allowed = f"{low}-{high}" if high is not None else f"{low} (automatic) or more"
                raise UsageError(f"{name} {value!r} is not allowed; use {allowed}")


class Writer(ABC):
    """One way of sending a fan-out. Construct it inside the writer's namespace; close it after."""

    name: ClassVar[str]
    summary: ClassVar[str]
    raw: ClassVar[bool] = False
    order: ClassVar[int] = 50
    """Place in listings and tables: the seed's baseline first, the reference peer last."""

    def __init__(self, target: Target, options: WriterOptions) -> None:
        if not target.ports:
            raise UsageError("target has no reader ports; give at least one")
        self.target = target
        self.options = options

    def check_fanout(self, messages: Sequence[object]) -> None:
        """UsageError unless there is exactly one message per reader port."""
        if len(messages) != len(self.target.ports):
            count = len(self.target.ports)
            raise UsageError(
                f"{len(messages)} messages for {count} reader ports; give one message for each of the {count} ports"
            )

    @property
    def delivered_size(self) -> int:
        """Bytes each reader should receive per message (the message, or its trimmed prefix)."""
        return self.options.message_size

    @property
    def trimmed_bytes(self) -> int:
        """Bytes cut from each message to fit the link (0 for writers that never trim)."""
        return self.options.message_size - self.delivered_size

    @abstractmethod
    def send(self, messages: Sequence[bytes | memoryview]) -> int:
        """Send ``messages[i]`` to ``target.ports[i]`` for every i; return the datagrams sent."""

    def resend(self, messages: Sequence[bytes | memoryview]) -> int:
        """Send the previous fan-out again; the caller promises ``messages`` are unchanged.

        Stream mode's call, the counterpart of trafgen replaying prebuilt frames: a writer that
        keeps the frames it built may copy them out again instead of rebuilding. Default: ``send``.
        """
        return self.send(messages)

    def close(self) -> None:
        """Release sockets, rings and files. Safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def names() -> list[str]:
    """Every registered writer's name: standard writers first, then raw ones, each by ``order``."""
    _load_all()
    return sorted(REGISTRY, key=lambda n: (REGISTRY[n].raw, REGISTRY[n].order, n))


def get(name: str) -> type[Writer]:
    """The writer class called ``name``; UsageError naming the allowed names otherwise."""
    _load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(f"writer {name!r} is unknown; use one of: {', '.join(names())}") from None
