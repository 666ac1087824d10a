"""Readers: N kernel UDP sockets in one process that check every datagram the writer delivers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawpacer import lazy

if TYPE_CHECKING:
    from rawpacer.limits import FIRST_PORT, MAX_READERS
    from rawpacer.readers.counts import Counts
    from rawpacer.readers.readerset import ReaderSet
    from rawpacer.readers.tally import Arrivals, OpResult, PortTally, RunTally
    from rawpacer.readers.tuning import ReaderTuning

_HOMES = {
    "FIRST_PORT": "rawpacer.limits",
    "MAX_READERS": "rawpacer.limits",
    "Counts": "rawpacer.readers.counts",
    "ReaderSet": "rawpacer.readers.readerset",
    "Arrivals": "rawpacer.readers.tally",
    "OpResult": "rawpacer.readers.tally",
    "PortTally": "rawpacer.readers.tally",
    "RunTally": "rawpacer.readers.tally",
    "ReaderTuning": "rawpacer.readers.tuning",
}
"""Where each public name lives; imported on first use (``rawpacer.lazy``), so a module of this
package imports no more than it needs."""

__all__ = [
    "FIRST_PORT",
    "MAX_READERS",
    "Arrivals",
    "Counts",
    "OpResult",
    "PortTally",
    "ReaderSet",
    "ReaderTuning",
    "RunTally",
]


def __getattr__(name: str) -> object:
    """A public name or submodule, imported on its first use (PEP 562)."""
    return lazy.attribute(__name__, _HOMES, name)
