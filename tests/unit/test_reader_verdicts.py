"""The readers' counting core on synthetic datagrams, and the C fast path held to the same verdicts.

No sockets: expected messages and (slot, datagram) events go in, verdicts come out. The pure
``core.Counter`` is the reference; ``rawpacer._readloop.Counter`` must agree on every verdict,
every arrival and every ``complete``, including on inputs hypothesis makes up.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawpacer import _readloop as readloop  # built by sudo-run.sh (tests/unit/test_checksum.py checks)
from rawpacer.errors import UsageError
from rawpacer.readers import arrivals, core, protocol, pyloop, tuning
from rawpacer.readers.counts import Counts
from rawpacer.readers.tally import OpResult, PortTally, RunTally
from rawpacer.readers.tuning import ReaderTuning

PORTS = (5001, 5002, 5003, 5004)
SIZE = 16


def expected_buffer(slots: int = 4, size: int = SIZE, seed: int = 1) -> bytearray:
    return bytearray(np.random.default_rng(seed).integers(0, 256, slots * size, dtype=np.uint8).tobytes())


def message(buffer: bytearray, slot: int, size: int = SIZE) -> bytes:
    return bytes(buffer[slot * size : (slot + 1) * size])


@pytest.fixture(params=["python", "c"])
def make(request):
    """Both counters, so every rule below is asserted on the reference and on the fast path."""
    cls = core.Counter if request.param == "python" else readloop.Counter
    return lambda buffer, size=SIZE, slots=4: cls(buffer, size, slots)


def test_every_slot_intact(make):
    buffer = expected_buffer()
    counter = make(buffer)
    counter.begin(SIZE, False, False)
    for slot in range(len(PORTS)):
        assert not counter.complete
        counter.datagram(slot, message(buffer, slot))
    assert counter.complete
    verdict = core.verdict(counter.tallies(), PORTS)
    assert verdict == core.Verdict(1, Counts(delivered=4, intact=4), ())


def test_corrupt_truncated_oversized_foreign_and_misdelivered(make):
    buffer = expected_buffer()
    counter = make(buffer)
    counter.begin(SIZE, False, False)
    flipped = bytearray(message(buffer, 0))
    flipped[SIZE - 1] ^= 0x01  # one bit in the last byte
    counter.datagram(0, flipped)
    counter.datagram(1, message(buffer, 1)[:-1])  # one byte short
    counter.datagram(2, message(buffer, 2) + b"\0")  # one byte long
    counter.datagram(3, message(buffer, 0))  # another reader's message
    counter.datagram(3, os.urandom(SIZE))  # a stranger's
    verdict = core.verdict(counter.tallies(), PORTS)
    assert (verdict.counts.delivered, verdict.counts.intact, verdict.counts.corrupt, verdict.counts.lost) == (
        5,
        0,
        5,
        0,
    )
    assert verdict.deviations[3] == PortTally(5004, Counts(delivered=2, intact=0, corrupt=2))
    assert [t.port for t in verdict.deviations] == list(PORTS)


def test_duplicate_missing_and_late(make):
    buffer = expected_buffer()
    counter = make(buffer)
    counter.datagram(2, b"between ops")  # no op open: late, counted against the next op
    counter.begin(SIZE, False, False)
    counter.datagram(0, message(buffer, 0))
    counter.datagram(0, message(buffer, 0))
    counter.datagram(2, message(buffer, 2))
    counter.datagram(3, message(buffer, 3))
    assert not counter.complete  # slot 1 has nothing
    verdict = core.verdict(counter.tallies(), PORTS)
    assert verdict == core.Verdict(
        per_port=1,
        counts=Counts(delivered=4, intact=3, corrupt=0, duplicate=1, lost=1, late=1),
        deviations=(
            PortTally(5001, Counts(delivered=2, intact=1, duplicate=1)),
            PortTally(5002, Counts(lost=1)),
            PortTally(5003, Counts(delivered=1, intact=1, late=1)),
        ),
    )
    counter.begin(SIZE, False, False)  # late datagrams belong to the op after them only
    assert core.verdict(counter.tallies(), PORTS).counts.late == 0


def test_trimmed_prefix_and_stream_counts(make):
    buffer = expected_buffer()
    counter = make(buffer)
    counter.begin(10, True, False)  # a stream of 10-byte prefixes
    for _ in range(3):
        for slot in range(len(PORTS)):
            counter.datagram(slot, message(buffer, slot)[:10])
    counter.datagram(1, message(buffer, 1))  # the whole message where a prefix was expected
    assert not counter.complete  # a stream's count is unknown until set_per_port
    counter.set_per_port(3)
    assert counter.complete
    verdict = core.verdict(counter.tallies(), PORTS)
    assert (verdict.per_port, verdict.counts.delivered, verdict.counts.intact, verdict.counts.corrupt) == (3, 13, 12, 1)
    counter.begin(SIZE, True, False)
    counter.datagram(0, message(buffer, 0))
    counter.set_per_port(2)  # overflowed receive buffers: fewer arrived than were sent
    verdict = core.verdict(counter.tallies(), PORTS)
    assert (verdict.counts.lost, verdict.deviations[0]) == (7, PortTally(5001, Counts(delivered=1, intact=1, lost=1)))


def test_timestamps_keep_every_datagram_in_order(make):
    buffer = expected_buffer()
    counter = make(buffer)
    counter.begin(SIZE, False, True)
    counter.datagram(3, message(buffer, 3), 30)
    counter.datagram(0, b"x", 10)
    counter.datagram(0, message(buffer, 0), 20)
    rx_ns, slot, match = (bytes(b) for b in counter.arrival_buffers())
    assert np.frombuffer(rx_ns, np.int64).tolist() == [30, 10, 20]
    assert np.frombuffer(slot, np.int32).tolist() == [3, 0, 0]
    assert list(match) == [1, 0, 1]
    counter.tallies()
    counter.begin(SIZE, False, False)
    counter.datagram(1, message(buffer, 1), 40)
    assert [len(b.cast("B")) for b in counter.arrival_buffers()] == [0, 0, 0]


GROWN = 70_000
"""More arrivals than the C counter's columns first hold (65536): the next op's arrivals must grow them."""


def stamp_op(counter, count: int, first_rx: int) -> None:
    """An op of ``count`` timestamped arrivals spread over the slots, intact on even arrivals."""
    buffer = expected_buffer()
    counter.begin(SIZE, True, True)
    for i in range(count):
        counter.datagram(i % 4, message(buffer, i % 4) if i % 2 == 0 else b"x", first_rx + i)


def test_arrival_views_held_past_begin_keep_their_bytes(make):
    counter = make(expected_buffer())
    stamp_op(counter, 1000, 10)
    views = counter.arrival_buffers()
    before = [bytes(v) for v in views]
    stamp_op(counter, GROWN, 5_000_000)  # overwrites from arrival 0, then grows past the first room
    counter.tallies()
    assert [bytes(v) for v in views] == before
    assert np.frombuffer(before[0], np.int64)[[0, -1]].tolist() == [10, 1009]
    assert len(counter.arrival_buffers()[2].cast("B")) == GROWN


def test_arrival_views_taken_mid_op_survive_later_arrivals_and_the_counter(make):
    counter = make(expected_buffer())
    stamp_op(counter, 1000, 10)
    views = counter.arrival_buffers()
    before = [bytes(v) for v in views]
    buffer = expected_buffer()
    for i in range(GROWN):  # the same op goes on, past the columns' first room
        counter.datagram(i % 4, message(buffer, i % 4), 7)
    whole = [bytes(v) for v in counter.arrival_buffers()]
    del counter
    assert [bytes(v) for v in views] == before == [column[: len(b)] for column, b in zip(whole, before)]
    assert len(whole[2]) == 1000 + GROWN


def test_bad_inputs_are_refused(make):
    with pytest.raises(ValueError, match="do not fit"):
        make(bytearray(10), 4, 3)
    counter = make(expected_buffer())
    with pytest.raises(ValueError, match="slot 4 is out of range 0-3"):
        counter.datagram(4, b"")
    with pytest.raises(ValueError, match="slot -1"):
        counter.datagram(-1, b"")
    with pytest.raises(ValueError, match="expected size 17"):
        counter.begin(SIZE + 1, False, False)
    with pytest.raises(ValueError, match="per_port 0"):
        counter.set_per_port(0)


def test_counter_reads_the_expected_buffer_live(make):
    buffer = expected_buffer()
    counter = make(buffer)
    counter.begin(SIZE, False, False)
    buffer[0:SIZE] = bytes(SIZE)  # the parent refills the shared slots between ops
    counter.datagram(0, bytes(SIZE))
    verdict = core.verdict(counter.tallies(), PORTS)
    assert verdict.counts.intact == 1 and [t.port for t in verdict.deviations] == [5002, 5003, 5004]


def test_port_tally_is_the_documented_rule():
    assert core.port_tally(7, expected=3, received=5, mismatched=1, late=2) == PortTally(
        7, Counts(delivered=5, intact=3, corrupt=1, duplicate=1, lost=0, late=2)
    )
    assert core.port_tally(7, expected=3, received=2, mismatched=2, late=0) == PortTally(
        7, Counts(delivered=2, intact=0, corrupt=2, duplicate=0, lost=1)
    )


# --- the fast path agrees with the reference on made-up traffic ---------------------------------

KINDS = ("exact", "short", "long", "flip", "other", "random", "empty")


def datagram_of(kind: str, buffer: bytes, slot: int, slots: int, slot_size: int, size: int, pick: int) -> bytes:
    exact = buffer[slot * slot_size : slot * slot_size + size]
    if kind == "exact":
        return exact
    if kind == "short":
        return exact[: pick % size]
    if kind == "long":
        return exact + bytes([pick % 256]) * (1 + pick % 3)
    if kind == "flip":
        body = bytearray(exact)
        body[pick % size] ^= 1 << (pick % 8)
        return bytes(body)
    if kind == "other":
        other = (slot + 1 + pick) % slots
        return buffer[other * slot_size : other * slot_size + size]
    if kind == "random":
        return bytes((pick * 7 + i) % 256 for i in range(size))
    return b""


events = st.lists(
    st.tuples(st.integers(0, 5), st.sampled_from(KINDS), st.integers(0, 1 << 16), st.integers(0, 1 << 62)),
    max_size=40,
)
ops = st.lists(
    st.tuples(
        st.integers(1, 8),  # expected size (clipped to the slot size)
        st.booleans(),  # stream
        st.booleans(),  # timestamps
        events,  # late datagrams before the op
        events,  # datagrams during the op
        st.integers(1, 5),  # a stream's per-port count
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(slots=st.integers(1, 6), slot_size=st.integers(1, 8), data=st.binary(min_size=48, max_size=48), ops=ops)
def test_fast_path_agrees_with_the_reference(slots, slot_size, data, ops):
    buffer = bytearray((data * 2)[: slots * slot_size])
    reference, fast = core.Counter(buffer, slot_size, slots), readloop.Counter(buffer, slot_size, slots)
    ports = [6000 + i for i in range(slots)]
    for size, stream, stamped, late, during, per_port in ops:
        size = min(size, slot_size)
        for counter in (reference, fast):
            for slot, kind, pick, _ in late:
                counter.datagram(
                    slot % slots, datagram_of(kind, bytes(buffer), slot % slots, slots, slot_size, size, pick)
                )
            counter.begin(size, stream, stamped)
            for slot, kind, pick, rx in during:
                body = datagram_of(kind, bytes(buffer), slot % slots, slots, slot_size, size, pick)
                counter.datagram(slot % slots, body, rx)
            if stream:
                counter.set_per_port(per_port)
        assert reference.complete == fast.complete
        assert [bytes(b) for b in reference.arrival_buffers()] == [bytes(b) for b in fast.arrival_buffers()]
        assert core.verdict(reference.tallies(), ports) == core.verdict(fast.tallies(), ports)


def test_both_loops_name_their_reasons_alike():
    assert (readloop.COMMAND, readloop.COMPLETE, readloop.DEADLINE, readloop.SILENCE) == (
        pyloop.COMMAND,
        pyloop.COMPLETE,
        pyloop.DEADLINE,
        pyloop.SILENCE,
    )


def test_both_loops_number_the_spin_modes_alike():
    assert (readloop.SLEEP, readloop.SPIN, readloop.POLL_OP) == (tuning.SLEEP, tuning.SPIN, tuning.POLL_OP)


@pytest.mark.parametrize(
    "kwargs, mode",
    [
        ({"spin": True}, tuning.SPIN),
        ({"spin": True, "poll_op": True}, tuning.SPIN),
        ({"spin": False}, tuning.SLEEP),
        ({"spin": False, "poll_op": True}, tuning.POLL_OP),
    ],
)
def test_spin_mode_follows_spin_then_poll_op(kwargs, mode):
    assert ReaderTuning(**kwargs).spin_mode == mode


def test_python_loop_when_the_extension_is_missing():
    """Simulate a build without a C compiler: auto picks the Python loop, asking for C is a usage error."""
    code = (
        "import sys; sys.modules['rawpacer._readloop'] = None\n"
        "from rawpacer.readers.tuning import ReaderTuning\n"
        "from rawpacer.readers import fastloop\n"
        "print(fastloop.available(), ReaderTuning().resolved_loop)\n"
        "ReaderTuning(loop='c')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert proc.stdout.split() == ["False", "python"]
    assert "reader loop 'c' is not allowed: rawpacer._readloop is not built" in proc.stderr


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"loop": "fast"}, "reader loop 'fast'"),
        ({"batch": 0}, "batch 0 is out of range"),
        ({"batch": 2000}, "batch 2000"),
        ({"linger_us": -1}, "linger_us -1"),
        ({"spin": "yes"}, "spin 'yes'"),
        ({"poll_op": 1}, "poll_op 1"),
    ],
)
def test_bad_tuning_is_a_usage_error(kwargs, match):
    with pytest.raises(UsageError, match=match):
        ReaderTuning(**kwargs)


# --- what travels from the reader process, and what the tallies make of it ----------------------


def test_outcome_survives_the_wire():
    deviations = (
        PortTally(5002, Counts(lost=1, socket_drops=1)),
        PortTally(5003, Counts(delivered=2, intact=1, duplicate=1)),
    )
    totals = Counts(delivered=3, intact=3, duplicate=1, lost=1, socket_drops=1)
    outcome = protocol.Outcome(
        verdict=core.Verdict(1, totals, deviations),
        timed_out=True,
        reader_cpu_s=0.5,
        reader_busy_s=0.25,
        reader_checked=3,
        reader_first_ns=10,
        reader_last_ns=20,
        arrivals=0,
    )
    assert protocol.decode(marshal.loads(protocol.encode(outcome))) == outcome


def test_arrivals_travel_in_a_memfd():
    counter = core.Counter(expected_buffer(), SIZE, len(PORTS))
    counter.begin(SIZE, True, True)
    for i in range(1000):
        counter.datagram(i % 4, b"?" if i == 7 else b"", 1_000_000 - i)
    got = arrivals.read(arrivals.write(counter.arrival_buffers()), 1000)
    assert got.rx_ns.dtype == np.int64 and got.slot.dtype == np.int32 and got.match.dtype == np.bool_
    assert got.rx_ns[0] == 1_000_000 and got.slot[:5].tolist() == [0, 1, 2, 3, 0] and not got.match.any()
    ordered = got.in_arrival_order()
    assert ordered.rx_ns[0] == 1_000_000 - 999 and (np.diff(ordered.rx_ns) > 0).all() and len(ordered) == 1000


def op_result(**kwargs) -> OpResult:
    base = {
        "mode": "op",
        "readers": 4,
        "expected_size": SIZE,
        "per_port": 1,
        "sent": 4,
        "counts": Counts(delivered=4, intact=4),
        "timed_out": False,
        "reader_cpu_s": 0.001,
        "wait_s": 0.0,
        "op_s": 0.0,
    }
    return OpResult(**(base | kwargs))


def test_drops_and_capacity_add_up_over_a_run():
    tally = RunTally(PORTS)
    tally.add(op_result(reader_busy_s=0.5, reader_checked=4))
    lossy = op_result(
        counts=Counts(delivered=3, intact=3, lost=1, socket_drops=1),
        reader_busy_s=0.5,
        reader_checked=3,
        deviations={5002: PortTally(5002, Counts(lost=1, socket_drops=1))},
    )
    tally.add(lossy)
    assert lossy.reader_capacity_pps == 6.0 and "1 dropped by full reader socket buffers" in lossy.describe()
    assert tally.counts.socket_drops == 1 and tally.port(5002) == PortTally(5002, Counts(1, 1, 0, 0, 1, 0, 1))
    assert tally.reader_capacity_pps == 7.0 and tally.to_dict()["reader_capacity_pps"] == 7.0
    assert op_result().reader_capacity_pps is None and op_result().to_dict()["arrivals"] is None


def test_receive_buffers_are_shared_out_by_reader_count():
    from rawpacer.readers.readerset import auto_rcvbuf

    assert [auto_rcvbuf(n) for n in (1, 8, 100, 256, 10_000)] == [32 << 20, 32 << 20, 2684354, 1 << 20, 1 << 20]
