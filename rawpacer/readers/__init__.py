"""Readers: N kernel UDP sockets in one process that check every datagram the writer delivers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawpacer import lazy

if TYPE_CHECKING:  # ``A as A``: re-exported for mypy, which cannot read the computed __all__
    from rawpacer.limits import FIRST_PORT as FIRST_PORT
    from rawpacer.limits import MAX_READERS as MAX_READERS
    from rawpacer.readers.counts import Counts as Counts
    from rawpacer.readers.readerset import ReaderSet as ReaderSet
    from rawpacer.readers.tally import Arrivals as Arrivals
    from rawpacer.readers.tally import OpResult as OpResult
    from rawpacer.readers.tally import PortTally as PortTally
    from rawpacer.readers.tally import RunTally as RunTally
    from rawpacer.readers.tuning import ReaderTuning as ReaderTuning

_HOMES = lazy.homes(
    {
        "rawpacer.limits": ("FIRST_PORT", "MAX_READERS"),
        "rawpacer.readers.counts": ("Counts",),
        "rawpacer.readers.readerset": ("ReaderSet",),
        "rawpacer.readers.tally": ("Arrivals", "OpResult", "PortTally", "RunTally"),
        "rawpacer.readers.tuning": ("ReaderTuning",),
    }
)
"""Where each public name lives; imported on first use (``rawpacer.lazy``), so a module of this
package imports no more than it needs."""

__all__ = list(_HOMES)


def __getattr__(name: str) -> object:
    """A public name or submodule, imported on its first use (PEP 562)."""
    return lazy.attribute(__name__, _HOMES, name)
