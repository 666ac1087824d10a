"""What the parent (``ReaderSet``) and the reader process say to each other, defined once.

Messages are marshalled tuples on a SOCK_SEQPACKET socketpair, the first item naming the kind.
A RESULT carries an ``Outcome``; when it has arrivals, their arrays travel beside it in a memfd
passed with SCM_RIGHTS (``rawpacer.readers.arrivals``), so a 60 s stream's timestamps never go
through marshal.
"""

from __future__ import annotations

import marshal
from typing import Any, NamedTuple

from rawpacer.readers.core import Verdict
from rawpacer.readers.tally import PortTally

# Commands (parent -> child), each a marshalled tuple whose first item is one of these:
# (BEGIN, expected_size, stream, timestamps, sequences), (WAIT, timeout_s, silence_s or -1.0),
# (END_STREAM, sent_per_port, settle_s), (CLOSE_PORT, slot), (STAMP,), (STOP,).
BEGIN, WAIT, END_STREAM, CLOSE_PORT, STAMP, STOP = "begin", "wait", "end", "close", "stamp", "stop"
# Replies (child -> parent): (READY, ports, loop), (RESULT, *Outcome), (DONE,),
# (ERROR, detail, detail_is_a_rawpacer_error_message).
READY, RESULT, DONE, ERROR = "ready", "result", "done", "error"

CONTROL_BUFFER = 16 << 20  # a result naming 10,000 deviating ports must fit in one message
COMMAND_BUFFER = 4096  # commands are a few small numbers


class Outcome(NamedTuple):
    """A RESULT's fields: the counting core's verdict and what the reader process measured."""

    verdict: Verdict
    timed_out: bool
    reader_cpu_s: float
    reader_busy_s: float
    reader_checked: int
    socket_drops: int
    reader_first_ns: int
    reader_last_ns: int
    arrivals: int
    """Entries in the memfd sent with the message (0: none, and no fd is sent)."""


def encode(outcome: Outcome) -> bytes:
    """The RESULT message for ``outcome`` (deviations as plain tuples in PortTally's field order)."""
    verdict = outcome.verdict
    wire: list[Any] = list(verdict)
    wire[Verdict._fields.index("deviations")] = tuple(t.as_row() for t in verdict.deviations)
    return marshal.dumps((RESULT, tuple(wire), *outcome[1:]))


def decode(message: tuple[Any, ...]) -> Outcome:
    """The ``Outcome`` of a RESULT message made by ``encode``."""
    wire = list(message[1])
    at = Verdict._fields.index("deviations")
    wire[at] = tuple(PortTally(*row) for row in wire[at])
    return Outcome(Verdict._make(wire), *message[2:])
