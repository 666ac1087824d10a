"""What the parent (``ReaderSet``) and the reader process say to each other, defined once.

Commands (parent -> child) are typed: one NamedTuple per kind, in ``COMMANDS``; on the
SOCK_SEQPACKET socketpair each is a marshalled tuple ``(its index in COMMANDS, *its fields)``.
Which command is allowed when is ``rawpacer.readers.states``'s table. Replies (child -> parent)
are marshalled tuples whose first item names the kind. A RESULT carries an ``Outcome``; when it
has arrivals, their arrays travel beside it in a memfd passed with SCM_RIGHTS
(``rawpacer.readers.arrivals``), so a 60 s stream's timestamps never go through marshal.
"""

from __future__ import annotations

import marshal
from typing import Any, NamedTuple

from rawpacer.readers.core import Verdict
from rawpacer.readers.counts import Counts
from rawpacer.readers.tally import PortTally


class BeginOp(NamedTuple):
    """Open one op: each reader expects one datagram, its slot's first ``expected_size`` bytes."""

    expected_size: int
    timestamps: bool


class BeginStream(NamedTuple):
    """Open a stream (sequenced when ``sequences`` > 0: its datagrams carry sequences below it)."""

    expected_size: int
    timestamps: bool
    sequences: int


class Wait(NamedTuple):
    """End the open op within ``timeout_s``, earlier after ``silence_s`` without datagrams (-1: no such rule)."""

    timeout_s: float
    silence_s: float


class EndStream(NamedTuple):
    """End the open stream of ``sent_per_port`` fan-outs once all arrived or ``settle_s`` passed without any."""

    sent_per_port: int
    settle_s: float


class ClosePort(NamedTuple):
    """Close one reader socket for good (a test hook); answered DONE."""

    slot: int


class Stamp(NamedTuple):
    """Turn the kernel's receive timestamping on for the process's life; answered DONE once it is."""


class Abort(NamedTuple):
    """Drop whatever op or stream is open, without a result; answered DONE (after any RESULT already sent)."""


class Stop(NamedTuple):
    """End the reader process."""


Command = BeginOp | BeginStream | Wait | EndStream | ClosePort | Stamp | Abort | Stop
COMMANDS: tuple[type[Command], ...] = (BeginOp, BeginStream, Wait, EndStream, ClosePort, Stamp, Abort, Stop)
_INDEX = {kind: i for i, kind in enumerate(COMMANDS)}

# Replies (child -> parent): (READY, ports, loop), (RESULT, *Outcome), (DONE,),
# (ERROR, detail, detail_is_a_rawpacer_error_message).
READY, RESULT, DONE, ERROR = "ready", "result", "done", "error"

CONTROL_BUFFER = 16 << 20  # a result naming 10,000 deviating ports must fit in one message
COMMAND_BUFFER = 4096  # commands are a few small numbers


def encode_command(command: Command) -> bytes:
    """The wire form of one command."""
    return marshal.dumps((_INDEX[type(command)], *command))


def decode_command(data: bytes | bytearray | memoryview) -> Command:
    """The command ``encode_command`` wrote (ValueError for anything else)."""
    message = marshal.loads(data)
    if not isinstance(message, tuple) or not message or not 0 <= message[0] < len(COMMANDS):
        raise ValueError(f"not a reader command: {message!r}")
    command: Command = COMMANDS[message[0]]._make(message[1:])
    return command


class Outcome(NamedTuple):
    """A RESULT's fields: the counting core's verdict and what the reader process measured."""

    verdict: Verdict
    timed_out: bool
    reader_cpu_s: float
    reader_busy_s: float
    reader_checked: int
    reader_first_ns: int
    reader_last_ns: int
    arrivals: int
    """Entries in the memfd sent with the message (0: none, and no fd is sent)."""


def encode(outcome: Outcome) -> bytes:
    """The RESULT message for ``outcome`` (counts, deviations and lengths as plain tuples)."""
    verdict = outcome.verdict
    deviations = tuple(t.as_row() for t in verdict.deviations)
    wire = (verdict.per_port, verdict.counts.as_row(), deviations, verdict.sequenced, verdict.lengths)
    return marshal.dumps((RESULT, wire, *outcome[1:]))


def decode(message: tuple[Any, ...]) -> Outcome:
    """The ``Outcome`` of a RESULT message made by ``encode``."""
    per_port, counts, rows, sequenced, lengths = message[1]
    verdict = Verdict(per_port, Counts(*counts), tuple(PortTally.from_row(row) for row in rows), sequenced, lengths)
    return Outcome(verdict, *message[2:])
