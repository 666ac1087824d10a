"""Sequenced streams: the sequence field, RFC 4737's reordering counts in the pure core, and the C
twin held to the same verdicts on sequences hypothesis permutes, duplicates, drops and corrupts."""

from __future__ import annotations

import socket
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawpacer import _readloop as readloop
from rawpacer import engine
from rawpacer.bench.result import Sample, WriterResult
from rawpacer.bench.rfc2544_suite.result import TrialRecord
from rawpacer.bench.rfc2544_suite.sizes import FrameSize
from rawpacer.bench.rfc2544_suite.trial import Outcome, Trial, TrialResult
from rawpacer.errors import UsageError
from rawpacer.headers import FrameTemplate, parse_frame
from rawpacer.headers.sequence import (
    MAX_SEQUENCE,
    SEQUENCE_BYTES,
    python_stamp_sequence,
    sequence_bytes,
    sequence_of,
    stamp_sequence,
)
from rawpacer.pacing import Pacer
from rawpacer.pacing.schedule import ConstantSchedule
from rawpacer.readers import core
from rawpacer.readers.counts import Counts
from rawpacer.readers.tally import OpResult, RunTally
from rawpacer.report.table import status

PORTS = (5001, 5002, 5003)
SIZE = 20


def buffer(slots: int = len(PORTS), size: int = SIZE) -> bytearray:
    return bytearray(np.random.default_rng(7).integers(0, 256, slots * size, dtype=np.uint8).tobytes())


def datagram(expected: bytearray, slot: int, sequence: int, size: int = SIZE) -> bytes:
    """Port ``slot``'s message carrying ``sequence``: what a sequenced stream sends."""
    return sequence_bytes(sequence) + bytes(expected[slot * size + SEQUENCE_BYTES : (slot + 1) * size])


def run(counter, expected: bytearray, events, per_port: int, sequences: int | None = None) -> core.Verdict:
    counter.begin(SIZE, True, False, per_port if sequences is None else sequences)
    for slot, sequence in events:
        counter.datagram(slot, datagram(expected, slot, sequence))
    counter.set_per_port(per_port)
    return core.verdict(counter.tallies(), PORTS)


@pytest.fixture(params=["python", "c"])
def make(request):
    cls = core.Counter if request.param == "python" else readloop.Counter
    return lambda expected: cls(expected, SIZE, len(PORTS))


# --- the sequence field -----------------------------------------------------------------------------


@pytest.mark.parametrize("sequence", [0, 1, 0xFFFF, 0x10000, 123_456_789_012, MAX_SEQUENCE])
def test_sequence_round_trips_and_sums_to_negative_zero(sequence):
    field = sequence_bytes(sequence)
    total = sum(struct.unpack(">4H", field))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    assert (len(field), total, sequence_of(field)) == (SEQUENCE_BYTES, 0xFFFF, sequence)


def test_a_wrong_check_word_is_no_sequence():
    field = bytearray(sequence_bytes(42))
    field[7] ^= 1
    assert sequence_of(field) is None
    assert sequence_of(b"short") is None
    with pytest.raises(UsageError, match="out of range"):
        sequence_bytes(MAX_SEQUENCE + 1)


@given(st.integers(0, MAX_SEQUENCE), st.integers(0, MAX_SEQUENCE), st.binary(min_size=0, max_size=40))
def test_the_udp_checksum_is_the_same_whatever_the_sequence(a, b, rest):
    """Why replayed frames need only their 8 bytes rewritten: the checksum never changes."""
    template = FrameTemplate(5001, src_ip="198.18.0.1", dst_ip="198.18.0.2")
    one, two = template.stamp(sequence_bytes(a) + rest), template.stamp(sequence_bytes(b) + rest)
    headers = len(one) - SEQUENCE_BYTES - len(rest)
    assert one[:headers] == two[:headers]  # the UDP checksum included
    assert parse_frame(two).udp_checksum_ok


@pytest.mark.parametrize("stamp", [stamp_sequence, python_stamp_sequence], ids=["c", "numpy"])
def test_stamp_sequence_writes_every_row_at_its_offset(stamp):
    rows = bytearray(3 * 12)
    stamp(rows, 12, 2, 9)
    table = np.frombuffer(rows, np.uint8).reshape(3, 12)
    assert all(bytes(row[2:10]) == sequence_bytes(9) for row in table)
    assert not table[:, :2].any() and not table[:, 10:].any()
    with pytest.raises((ValueError, UsageError)):
        stamp(rows, 12, 5, 9)


# --- RFC 4737 counts, on both counters ----------------------------------------------------------------


def test_in_order_stream_is_perfect(make):
    expected = buffer()
    verdict = run(make(expected), expected, [(s, k) for k in range(5) for s in range(3)], 5)
    assert (
        verdict.sequenced,
        verdict.counts.intact,
        verdict.counts.reordered,
        verdict.counts.duplicate,
        verdict.deviations,
    ) == (
        True,
        15,
        0,
        0,
        (),
    )


def test_rfc4737_example_counts(make):
    """Port 5001 receives 0 1 2 5 3 4 6 (RFC 4737 3.3: 3 and 4 arrive after 5, extent 1 and 2),
    then 4 again (a duplicate, not a reordered packet), and nothing is lost."""
    expected = buffer()
    order = [0, 1, 2, 5, 3, 4, 6, 4]
    events = [(0, k) for k in order] + [(s, k) for s in (1, 2) for k in range(7)]
    verdict = run(make(expected), expected, events, 7)
    (port,) = verdict.deviations
    assert (
        port.port,
        port.counts.intact,
        port.counts.duplicate,
        port.counts.lost,
        port.counts.reordered,
        port.counts.reorder_extent,
    ) == (
        5001,
        7,
        1,
        0,
        2,
        2,
    )
    assert (
        verdict.counts.reordered,
        verdict.counts.reorder_extent,
        verdict.counts.duplicate,
        port.counts.in_order,
    ) == (2, 2, 1, 5)


def test_a_duplicate_does_not_hide_a_loss(make):
    """0 1 1 3: a duplicate of 1 and sequence 2 missing are both counted (count-only rules would say 4 intact)."""
    expected = buffer()
    events = [(0, 0), (0, 1), (0, 1), (0, 3)] + [(s, k) for s in (1, 2) for k in range(4)]
    (port,) = run(make(expected), expected, events, 4).deviations
    assert (port.counts.intact, port.counts.duplicate, port.counts.lost, port.counts.reordered) == (3, 1, 1, 0)


def test_a_sequence_beyond_the_stream_is_corrupt(make):
    expected = buffer()
    events = [(s, k) for s in range(3) for k in range(2)] + [(2, 2)]
    (port,) = run(make(expected), expected, events, 2, sequences=2).deviations
    assert (port.port, port.counts.corrupt, port.counts.intact) == (5003, 1, 2)


def test_a_wrong_payload_after_a_good_sequence_is_corrupt(make):
    expected = buffer()
    counter = make(expected)
    counter.begin(SIZE, True, False, 1)
    counter.datagram(0, sequence_bytes(0) + bytes(SIZE - SEQUENCE_BYTES))
    counter.set_per_port(1)
    verdict = core.verdict(counter.tallies(), PORTS)
    assert (verdict.counts.corrupt, verdict.sequenced) == (1, True)


def test_ops_and_short_messages_are_not_sequenced(make):
    expected = buffer()
    counter = make(expected)
    counter.begin(SIZE, False, False, 5)  # a fan-out op: the whole message, as it is in the buffer
    for slot in range(3):
        counter.datagram(slot, bytes(expected[slot * SIZE : (slot + 1) * SIZE]))
    verdict = core.verdict(counter.tallies(), PORTS)
    assert (verdict.sequenced, verdict.counts.intact) == (False, 3)
    counter.begin(SEQUENCE_BYTES - 1, True, False, 5)
    counter.set_per_port(1)
    assert core.verdict(counter.tallies(), PORTS).sequenced is False


def test_reordered_ratio_and_run_totals():
    expected = buffer()
    verdict = run(
        core.Counter(expected, SIZE, 3), expected, [(0, 1), (0, 0)] + [(s, k) for s in (1, 2) for k in (0, 1)], 2
    )
    counts = verdict.counts._replace(delivered=6, intact=6)
    op = OpResult(
        "stream", 3, SIZE, 2, 6, counts, False, 0, 0, 0, {t.port: t for t in verdict.deviations}, sequenced=True
    )
    tally = RunTally(PORTS)
    tally.add(op)
    tally.add(op)
    assert (op.reordered_ratio, tally.counts.reordered, tally.counts.reorder_extent, tally.reordered_ratio) == (
        1 / 6,
        2,
        1,
        1 / 6,
    )
    assert tally.port(5001).counts.reordered == 2 and tally.port(5002).counts.reordered == 0
    assert "1 reordered (extent up to 1) on ports 5001" in op.describe()


# --- the C twin agrees with the reference -------------------------------------------------------------

streams = st.lists(
    st.tuples(
        st.integers(0, 2),  # slot
        st.integers(0, 12),  # sequence (some beyond the stream)
        st.sampled_from(["good", "good", "good", "bad-check", "bad-body"]),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(
    events=streams,
    per_port=st.integers(1, 10),
    order=st.permutations(range(10)),
    repeats=st.lists(st.integers(0, 9), max_size=5),
)
def test_fast_path_agrees_on_sequences(events, per_port, order, repeats):
    expected = buffer()
    reference, fast = core.Counter(expected, SIZE, 3), readloop.Counter(expected, SIZE, 3)
    # a permuted, duplicated stream on port 0 and made-up events on every port
    stream = [(0, k, "good") for k in order] + [(0, k, "good") for k in repeats] + events
    verdicts = []
    for counter in (reference, fast):
        counter.begin(SIZE, True, False, per_port)
        for slot, k, kind in stream:
            body = bytearray(datagram(expected, slot, k))
            if kind == "bad-check":
                body[6] ^= 0x80
            elif kind == "bad-body":
                body[-1] ^= 0x80
            counter.datagram(slot, body)
        counter.set_per_port(per_port)
        verdicts.append((counter.complete, core.verdict(counter.tallies(), PORTS)))
    assert verdicts[0] == verdicts[1]
    assert all(t.counts.reordered <= t.counts.intact + t.counts.duplicate for t in verdicts[0][1].deviations)


@settings(max_examples=200, deadline=None)
@given(order=st.permutations(range(30)))
def test_reordering_extent_matches_its_definition(order):
    """RFC 4737 4.2.1 computed the slow way (for every reordered arrival i, the earliest j with a
    higher sequence) against both counters' incremental count."""
    expected = buffer()
    reordered, extent = 0, 0
    for i, s in enumerate(order):
        if s < max(order[:i], default=-1) + 1:
            reordered += 1
            extent = max(extent, i - min(j for j in range(i) if order[j] > s))
    for cls in (core.Counter, readloop.Counter):
        events = [(0, k) for k in order] + [(s, k) for s in (1, 2) for k in range(30)]
        verdict = run(cls(expected, SIZE, 3), expected, events, 30)
        assert (verdict.counts.reordered, verdict.counts.reorder_extent) == (reordered, extent)


# --- where the counts are reported ---------------------------------------------------------------------


def test_compare_rows_carry_reordering_and_say_it_in_the_status():
    def sample(reordered: int, extent: int | None) -> Sample:
        counts = Counts(delivered=1000, intact=1000, reordered=reordered, reorder_extent=extent or 0)
        return Sample(10, 1000, 1000, counts, 1500_000, sequenced=extent is not None)

    row = WriterResult("udp-sendmmsg", 100, 1500, 1500, samples=[sample(3, 2), sample(1, 5)])
    assert row.reordering() == (4, 4 / 2000, 5)
    assert status(row) == "4 reordered (0.200%, extent up to 5)"
    data = row.to_dict()
    assert (data["reordered"], data["reordered_ratio"], data["reorder_extent"]) == (4, 0.002, 5)
    assert data["samples"][0]["reordered_ratio"] == 0.003
    fanout = WriterResult("udp-sendmmsg", 100, 1500, 1500, samples=[sample(0, None)])
    assert (fanout.reordering(), status(fanout), fanout.to_dict()["reorder_extent"]) == (None, "ok", None)


def test_rfc2544_trial_records_carry_reordering():
    trial = Trial("throughput", FrameSize.of(64), rate_pps=1000.0, duration_s=1.0)
    result = TrialResult(trial, 1000, 1000, 999, 0, duplicate=1, reordered=10, reorder_extent=4)
    record = TrialRecord.of(result, Outcome.PASS)
    assert (record.duplicate, record.reordered, record.reorder_extent) == (1, 10, 4)
    assert record.reordered_ratio == pytest.approx(10 / 999)
    assert TrialRecord.of(TrialResult(trial, 1, 1, 1, 0), Outcome.PASS).reordered_ratio is None


def test_the_engines_paced_loop_stamps_each_frame_as_it_leaves():
    """The engine's loop paced by the pacer's C core stamps frame k % n with sequence first + k // n
    (a socketpair, no root)."""
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    frames = [bytearray(b"hdr" + bytes(SEQUENCE_BYTES) + bytes([i]) * 5) for i in range(3)]
    core = Pacer(ConstantSchedule(1e6, 1)).loop_core
    assert core is not None
    with sender, receiver:
        paced = engine.Frames(engine.mmsg(sender.fileno()), engine.pinned(frames), 1, 3)
        paced.send(0, 3, core)  # a first round, unstamped
        paced.send(3, 6, core, 7)
        got = [receiver.recv(64) for _ in range(9)][3:]
        short = engine.Frames(engine.mmsg(sender.fileno()), engine.pinned([bytearray(4)]), 1, 0)
        with pytest.raises(ValueError, match="room for the sequence"):
            short.send(0, 1, core, 0)
    assert [(sequence_of(d[3:11]), d[-1]) for d in got] == [(7, 0), (7, 1), (7, 2), (8, 0), (8, 1), (8, 2)]
