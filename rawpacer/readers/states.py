"""The reader process's states and which command moves it where, as a table both ends obey.

The parent checks a command against the table before it sends it (a refused one is a
``UsageError`` saying what to call instead); the reader process checks it again on receipt.
``Reported`` is the one move no command makes: the process answering a finishing op or stream
with its RESULT. ``Abort`` leads back to ``IDLE`` from every live state.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import NamedTuple

from rawpacer.errors import UsageError
from rawpacer.readers.protocol import (
    Abort,
    BeginOp,
    BeginStream,
    ClosePort,
    Command,
    EndStream,
    Stamp,
    Stop,
    Wait,
)


class State(Enum):
    """Where the readers are; the value says it in words."""

    IDLE = "between ops"
    OP = "running an op"
    STREAM = "running a stream"
    FINISHING = "finishing an op or stream (its result is on its way)"
    CLOSED = "closed"


class Reported(NamedTuple):
    """The reader process answered the finishing op or stream with its RESULT."""


Move = Command | Reported

TRANSITIONS: Mapping[State, Mapping[type[Move], State]] = {
    State.IDLE: {
        BeginOp: State.OP,
        BeginStream: State.STREAM,
        ClosePort: State.IDLE,
        Stamp: State.IDLE,
        Abort: State.IDLE,
        Stop: State.CLOSED,
    },
    State.OP: {Wait: State.FINISHING, Abort: State.IDLE, Stop: State.CLOSED},
    State.STREAM: {EndStream: State.FINISHING, Abort: State.IDLE, Stop: State.CLOSED},
    State.FINISHING: {Reported: State.IDLE, Abort: State.IDLE, Stop: State.CLOSED},
    State.CLOSED: {},
}
"""state -> {command (or Reported) -> next state}; a move missing here is refused."""

HINTS: Mapping[State, str] = {
    State.IDLE: "call begin() or begin_stream() first",
    State.OP: "call wait() first, or abort() to drop the op",
    State.STREAM: "call end_stream() first, or abort() to drop the stream",
    State.FINISHING: "its result is still to be read; abort() drops it",
    State.CLOSED: "open a new reader set",
}


class IllegalTransition(UsageError):
    """A command the readers' state does not allow (a caller's mistake, said in one line)."""


class Machine:
    """The readers' current state, moved only along ``TRANSITIONS``."""

    __slots__ = ("state",)

    def __init__(self, state: State = State.IDLE) -> None:
        self.state = state

    def check(self, move: Move) -> State:
        """The state ``move`` leads to from here; IllegalTransition when the table has no such move."""
        to = TRANSITIONS[self.state].get(type(move))
        if to is None:
            raise IllegalTransition(
                f"{type(move).__name__} is not allowed while the readers are {self.state.value}: {HINTS[self.state]}"
            )
        return to

    def apply(self, move: Move) -> State:
        """Make ``move`` (refused as ``check`` refuses it) and return the new state."""
        self.state = self.check(move)
        return self.state
