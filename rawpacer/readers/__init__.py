"""Readers: N kernel UDP sockets in one process that check every datagram the writer delivers."""

from rawpacer.limits import FIRST_PORT, MAX_READERS
from rawpacer.readers.counts import Counts
from rawpacer.readers.readerset import ReaderSet
from rawpacer.readers.tally import Arrivals, OpResult, PortTally, RunTally
from rawpacer.readers.tuning import ReaderTuning

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
