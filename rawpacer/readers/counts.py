"""``Counts``: what readers counted, declared once and added up the same way everywhere.

A port's op, an op, a stream, a run, a benchmark sample and a remote host's share all hold one
``Counts``; they fold with ``+`` and reach the JSON through ``to_dict()``. A field sums unless
``FOLDS`` names another fold (the reordering extent is a maximum, RFC 4737 4.2.1), so a new
counted field is one line here. It is a NamedTuple: immutable, and cheap enough to add on every
op inside the timed loop (about 1 µs here, a frozen dataclass 5 µs).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

Fold = Callable[[Any, Any], Any]


class Counts(NamedTuple):
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
    reorder_extent: int = 0
    """The largest reordering extent (RFC 4737 4.2.1) among them."""

    def __add__(self, other: Counts) -> Counts:  # type: ignore[override]  # field by field, not tuple concatenation
        if not isinstance(other, Counts):
            return NotImplemented
        return Counts._make(map(_fold, _FOLDS, self, other))

    def to_dict(self) -> dict[str, int]:
        """The JSON form: one key per field."""
        return self._asdict()

    def as_row(self) -> tuple[int, ...]:
        """The fields in declaration order (a compact wire form; ``Counts(*row)`` reads it back)."""
        return tuple(self)

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Counts:
        """The counts among ``values`` (a JSON form, or any mapping with the field names)."""
        return cls(**{name: values[name] for name in NAMES if name in values})

    @property
    def in_order(self) -> int:
        """Intact datagrams that were not reordered."""
        return self.intact - self.reordered


NAMES: tuple[str, ...] = Counts._fields
"""Every counted field's name, in declaration order."""
FOLDS: Mapping[str, Fold] = {"reorder_extent": max}
"""How a field combines when it does not sum."""
_FOLDS: tuple[Fold, ...] = tuple(FOLDS.get(name, operator.add) for name in NAMES)


def _fold(fold: Fold, a: Any, b: Any) -> Any:
    return fold(a, b)


def total(parts: Iterable[Counts]) -> Counts:
    """The sum of Counts (``Counts()`` when there are none)."""
    out = Counts()
    for part in parts:
        out = out + part
    return out
