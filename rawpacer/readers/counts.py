"""``Counts``: what readers counted, declared once and added up the same way everywhere.

A port's op, an op, a stream, a run, a benchmark sample and a remote host's share all hold one
``Counts``; they fold with ``+`` and reach the JSON through ``to_dict()``. A field sums unless its
metadata names another fold (``LARGEST``: the reordering extent is a maximum, RFC 4737 4.2.1), so a
new counted field is one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

Fold = Callable[[Any, Any], Any]
FOLD = "fold"
"""The metadata key naming how a field combines (default: ``+``)."""
LARGEST: dict[str, Fold] = {FOLD: max}


@dataclass(frozen=True, slots=True)
class Counts:
    """Datagram counts (see ``rawpacer.readers.core`` for the rules that fill them)."""

    delivered: int = 0
    intact: int = 0
    corrupt: int = 0
    duplicate: int = 0
    lost: int = 0
    late: int = 0
    socket_drops: int = 0
    """Dropped by the kernel at the reader sockets (full receive buffers)."""
    reordered: int = 0
    """First copies that arrived after a higher sequence (RFC 4737 3.3; sequenced streams only)."""
    reorder_extent: int = field(default=0, metadata=LARGEST)
    """The largest reordering extent (RFC 4737 4.2.1) among them."""

    def __add__(self, other: Counts) -> Counts:
        if not isinstance(other, Counts):
            return NotImplemented
        return Counts(*(_fold(f)(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)))

    def to_dict(self) -> dict[str, int]:
        """The JSON form: one key per field."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def as_row(self) -> tuple[int, ...]:
        """The fields in declaration order (a compact wire form; ``Counts(*row)`` reads it back)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @classmethod
    def of(cls, values: dict[str, Any]) -> Counts:
        """The counts among ``values`` (a JSON form, or any mapping with the field names)."""
        return cls(**{name: values[name] for name in NAMES if name in values})

    @property
    def in_order(self) -> int:
        """Intact datagrams that were not reordered."""
        return self.intact - self.reordered


NAMES: tuple[str, ...] = tuple(f.name for f in fields(Counts))
"""Every counted field's name, in declaration order."""


def _fold(f: Any) -> Fold:
    fold: Fold = f.metadata.get(FOLD, _plus)
    return fold


def _plus(a: Any, b: Any) -> Any:
    return a + b


def total(parts: Any) -> Counts:
    """The sum of an iterable of Counts (``Counts()`` when empty)."""
    out = Counts()
    for part in parts:
        out = out + part
    return out
