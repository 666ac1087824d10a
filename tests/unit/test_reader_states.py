"""The reader process's state table: every move it lists is made, every other one refused in one line."""

from __future__ import annotations

import marshal

import pytest

from rawpacer.errors import UsageError
from rawpacer.readers import protocol
from rawpacer.readers.core import Verdict
from rawpacer.readers.counts import Counts
from rawpacer.readers.states import HINTS, TRANSITIONS, IllegalTransition, Machine, Reported, State
from rawpacer.readers.tally import PortTally

SAMPLES: list[protocol.Command | Reported] = [
    protocol.BeginOp(100, False),
    protocol.BeginStream(100, True, 50),
    protocol.Wait(1.0, -1.0),
    protocol.EndStream(10, 0.2),
    protocol.ClosePort(3),
    protocol.Stamp(),
    protocol.Abort(),
    protocol.Stop(),
    Reported(),
]
"""One of every command, and the RESULT's move."""


def test_every_state_has_a_row_and_a_hint_and_every_move_is_sampled():
    assert set(TRANSITIONS) == set(State) == set(HINTS)
    assert {type(m) for m in SAMPLES} == {*protocol.COMMANDS, Reported}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("move", SAMPLES, ids=lambda m: type(m).__name__)
def test_the_table_decides_every_move(state, move):
    machine = Machine(state)
    allowed = TRANSITIONS[state].get(type(move))
    if allowed is not None:
        assert machine.apply(move) is allowed and machine.state is allowed
        return
    with pytest.raises(IllegalTransition) as refused:
        machine.apply(move)
    message = str(refused.value)
    assert machine.state is state  # a refused move changes nothing
    assert message.startswith(f"{type(move).__name__} is not allowed while the readers are {state.value}")
    assert HINTS[state] in message and "\n" not in message and isinstance(refused.value, UsageError)


@pytest.mark.parametrize("state", [s for s in State if s is not State.CLOSED])
def test_abort_leads_back_to_idle_from_every_live_state(state):
    assert Machine(state).apply(protocol.Abort()) is State.IDLE


def test_an_op_and_a_stream_go_round_the_table():
    machine = Machine()
    path = [protocol.BeginOp(10, False), protocol.Wait(1.0, -1.0), Reported()]
    path += [protocol.BeginStream(10, False, 0), protocol.EndStream(5, 0.2), Reported(), protocol.Stop()]
    assert [machine.apply(m) for m in path] == [
        State.OP, State.FINISHING, State.IDLE, State.STREAM, State.FINISHING, State.IDLE, State.CLOSED,
    ]  # fmt: skip
    with pytest.raises(IllegalTransition, match="closed: open a new reader set"):
        machine.apply(protocol.Abort())


def test_the_usual_mistakes_say_what_to_call():
    with pytest.raises(
        IllegalTransition, match=r"Wait is not allowed while the readers are between ops: call begin\(\)"
    ):
        Machine().apply(protocol.Wait(1.0, -1.0))
    with pytest.raises(IllegalTransition, match=r"BeginOp .* running an op: call wait\(\) first, or abort\(\)"):
        Machine(State.OP).apply(protocol.BeginOp(10, False))
    with pytest.raises(IllegalTransition, match=r"Wait .* running a stream: call end_stream\(\) first"):
        Machine(State.STREAM).apply(protocol.Wait(1.0, -1.0))


@pytest.mark.parametrize("command", SAMPLES[:-1], ids=lambda m: type(m).__name__)
def test_commands_survive_the_wire(command):
    back = protocol.decode_command(protocol.encode_command(command))
    assert back == command and type(back) is type(command)


@pytest.mark.parametrize(
    "junk", [b"\xe9\x00\x00\x00\x00", protocol.encode_command(protocol.Stop())[:-4] + b"\x63\x00\x00\x00"]
)
def test_anything_else_on_the_wire_is_refused(junk):
    with pytest.raises(ValueError, match="not a reader command"):
        protocol.decode_command(junk)


def test_a_result_survives_the_wire_with_its_counts_deviations_and_lengths():
    """A shaped stream's per-length rows travel beside its Counts (they are a mapping, not one more sum)."""
    verdict = Verdict(
        per_port=3,
        counts=Counts(delivered=9, intact=8, corrupt=1, socket_drops=2),
        deviations=(PortTally(5001, Counts(delivered=2, intact=1, corrupt=1)),),
        lengths=((18, 4, 4), (64, 5, 4)),
    )
    outcome = protocol.Outcome(verdict, False, 0.5, 0.25, 9, 10, 20, 0)
    assert protocol.decode(marshal.loads(protocol.encode(outcome))) == outcome
