"""Readers: N kernel UDP sockets in one process that check every datagram the writer delivers."""

from rawpacer.readers.readerset import FIRST_PORT, MAX_READERS, ReaderSet
from rawpacer.readers.tally import OpResult, PortTally, RunTally

__all__ = ["FIRST_PORT", "MAX_READERS", "OpResult", "PortTally", "ReaderSet", "RunTally"]
