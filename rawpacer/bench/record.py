"""What every run's JSON document holds around its rows: where it ran, with what parameters, notes,
whether it was cut short; written once for ``compare``'s Report and RFC 2544's Run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Row = TypeVar("Row")


def derived(row: object, names: Iterable[str]) -> dict[str, Any]:
    """``row``'s derived values (its properties) keyed by name: what a row's JSON object holds beside its
    dataclass fields, each name written once."""
    return {name: getattr(row, name) for name in names}


@dataclass
class RunRecord(Generic[Row]):
    """A whole run: where, with what parameters, its rows so far, notes, and whether it was cut short."""

    machine: dict[str, Any]
    params: dict[str, Any]
    results: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    environment: dict[str, Any] = field(default_factory=dict)
    """Where the run was measured (rawpacer.host.environment): version, command, kernel, clocks."""

    def header(self) -> dict[str, Any]:
        """The JSON document without its rows: machine, environment, params, interrupted, notes."""
        return {
            "machine": self.machine,
            "environment": self.environment,
            "params": self.params,
            "interrupted": self.interrupted,
            "notes": list(self.notes),
        }
