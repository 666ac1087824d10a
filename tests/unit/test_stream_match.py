"""The streaming replay verdict counts what ``match_arrays`` counts, whatever the batches, while the
horizon covers the flow; past it, what it forgets is counted as documented, and its state stays bounded."""

import itertools
import random

import numpy as np
import pytest
from test_replay_match import network

from rawpacer.readers.replaymatch import match_arrays, python_match_flow
from rawpacer.readers.streammatch import StreamMatcher


def splits(rng: random.Random, n: int) -> list[tuple[int, int]]:
    """``range(n)`` cut at random places (empty pieces included)."""
    cuts = sorted(rng.randrange(n + 1) for _ in range(rng.randrange(6)))
    bounds = [0, *cuts, n]
    return list(itertools.pairwise(bounds))


def random_flow(rng: random.Random, sequenced: bool) -> tuple[list[int], list[int] | None, list[int]]:
    n = rng.choice([0, 1, 2, 5, 50, 400])
    sent = [rng.getrandbits(64) for _ in range(n)]
    for _ in range(n // 10):  # the capture held some datagrams twice
        sent.insert(rng.randrange(n + 1), rng.choice(sent) if sent else 1)
    sequences = None
    if sequenced:
        first: dict[int, int] = {}
        sequences = [first.setdefault(value, k) for k, value in enumerate(sent)]
    return sent, sequences, network(rng, sent)


@pytest.mark.parametrize("seed", range(40))
def test_streamed_in_random_batches_equals_match_arrays(seed):
    rng = random.Random(seed)
    flows = [random_flow(rng, sequenced=bool(rng.getrandbits(1))) for _ in range(rng.randrange(1, 4))]
    # the replay sends the flows interleaved: a random merge of their send orders
    order = [f for f, (sent, _, _) in enumerate(flows) for _ in sent]
    rng.shuffle(order)
    taken = [0] * len(flows)
    stream = []
    for f in order:
        sent, sequences, _ = flows[f]
        k = taken[f]
        taken[f] += 1
        stream.append((f, sent[k], k * 1000 + f, -1 if sequences is None else sequences[k]))
    matcher = StreamMatcher(window=1 << 20)
    for lo, hi in splits(rng, len(stream)):
        part = stream[lo:hi]
        matcher.plan(
            np.array([s[0] for s in part], np.int64),
            np.array([s[1] for s in part], np.uint64),
            np.array([s[2] for s in part], np.int64),
            np.array([s[3] for s in part], np.int64),
        )
    for f, (sent, sequences, received) in enumerate(flows):
        rx = np.arange(len(received), dtype=np.int64) * 7
        pairs_rx, pairs_due = [], []
        for lo, hi in splits(rng, len(received)):
            pairs = matcher.arrive(f, np.array(received[lo:hi], np.uint64), rx[lo:hi])
            pairs_rx += pairs.rx_ns.tolist()
            pairs_due += pairs.due_ns.tolist()
        matched = match_arrays(sent, received, sequences)
        got = matcher.verdicts().get(f)
        if sent:
            assert got == matched.verdict == python_match_flow(sent, received, sequences)
        assert pairs_rx == (matched.arrivals * 7).tolist()
        assert pairs_due == [p * 1000 + f for p in matched.positions.tolist()]


def test_planned_and_arriving_in_turns_equals_match_arrays():
    rng = random.Random(7)
    sent = [rng.getrandbits(64) for _ in range(5000)]
    received = [v for v in sent if rng.random() > 0.05]  # some lost, some swapped with a near neighbour
    for a in rng.sample(range(len(received) - 9), 300):
        received[a], received[a + 9] = received[a + 9], received[a]
    matcher = StreamMatcher(window=1 << 20)
    at = 0
    for lo in range(0, 5000, 1000):  # a chunk planned, then what has arrived of it so far
        block = np.array(sent[lo : lo + 1000], np.uint64)
        matcher.plan(np.zeros(1000, np.int64), block.view(np.int64), np.arange(lo, lo + 1000), np.full(1000, -1))
        upto = min(len(received), at + 900)
        matcher.arrive(0, np.array(received[at:upto], np.uint64), np.zeros(upto - at, np.int64))
        at = upto
    matcher.arrive(0, np.array(received[at:], np.uint64), np.zeros(len(received) - at, np.int64))
    assert matcher.verdicts()[0] == match_arrays(sent, received).verdict


def test_a_datagram_reordered_past_the_horizon_is_lost_and_its_arrival_corrupt():
    sent = list(range(1, 101))
    received = [s for s in sent if s != 10] + [10]  # datagram 10 arrives after all 99 sent later
    for batches in ([received], [[x] for x in received]):  # whatever the batches
        matcher = StreamMatcher(window=50)
        matcher.plan(np.zeros(100, np.int64), np.array(sent, np.uint64), np.arange(100), np.full(100, -1))
        for batch in batches:
            matcher.arrive(0, np.array(batch, np.uint64), np.zeros(len(batch), np.int64))
        verdict = matcher.verdicts()[0]
        assert (verdict.intact, verdict.lost, verdict.corrupt, verdict.late, verdict.duplicated) == (99, 1, 1, 0, 0)
    # within the horizon it is late, as match_arrays counts it
    matcher = StreamMatcher(window=100)
    matcher.plan(np.zeros(100, np.int64), np.array(sent, np.uint64), np.arange(100), np.full(100, -1))
    matcher.arrive(0, np.array(received, np.uint64), np.zeros(100, np.int64))
    assert matcher.verdicts()[0] == match_arrays(sent, received).verdict


def test_a_duplicate_past_the_horizon_is_corrupt():
    matcher = StreamMatcher(window=15)  # 5 is 24 positions behind the newest arrival, 28 is 1
    matcher.plan(np.zeros(30, np.int64), np.arange(1, 31, dtype=np.uint64), np.arange(30), np.full(30, -1))
    matcher.arrive(0, np.array([*range(1, 31), 5, 28], np.uint64), np.zeros(32, np.int64))
    verdict = matcher.verdicts()[0]
    assert (verdict.intact, verdict.duplicated, verdict.corrupt, verdict.lost) == (30, 1, 1, 0)


def test_state_stays_bounded_after_a_million_in_order_datagrams():
    matcher = StreamMatcher(window=4096)
    n, chunk = 1_000_000, 2_000
    most = 0
    for lo in range(0, n, chunk):
        digests = np.arange(lo + 1, lo + chunk + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        matcher.plan(np.arange(chunk) % 3, digests, np.arange(lo, lo + chunk), np.arange(lo, lo + chunk))
        for flow in range(3):
            mine = digests[flow::3]
            matcher.arrive(flow, mine, np.zeros(mine.size, np.int64))
        most = max(most, matcher.held())
    assert most <= chunk + 3 * 4096
    total = sum(v.intact for v in matcher.verdicts().values())
    assert total == n and not any(v.lost or v.late or v.corrupt for v in matcher.verdicts().values())


def test_a_flow_whose_arrivals_stopped_is_forgotten_past_twice_the_horizon():
    matcher = StreamMatcher(window=1000)
    for lo in range(0, 100_000, 5000):
        matcher.plan(
            np.zeros(5000, np.int64), np.arange(lo + 1, lo + 5001, dtype=np.uint64), np.zeros(5000), np.full(5000, -1)
        )
        matcher.arrive(0, np.zeros(0, np.uint64), np.zeros(0, np.int64))
    assert matcher.held() <= 2000
    assert matcher.verdicts()[0].lost == 100_000


@pytest.mark.parametrize("seed", range(6))
def test_a_capture_looped_past_the_horizon_is_matched_as_a_whole(seed):
    rng = random.Random(seed)
    once = [rng.getrandbits(64) for _ in range(1000)]
    sent = once * 10  # --loop 10: each content sent ten times, 1000 apart; the horizon holds 1.5 loops
    received = []
    for value in sent:  # nothing lost: some duplicated, some corrupt, near neighbours swapped
        received += [value] * (2 if rng.random() < 0.03 else 1)
        if rng.random() < 0.02:
            received.append(rng.getrandbits(64))
    for a in rng.sample(range(len(received) - 5), 200):
        received[a], received[a + 5] = received[a + 5], received[a]
    matcher = StreamMatcher(window=1500)
    at = 0
    for lo in range(0, len(sent), 500):  # planned a chunk ahead of what arrives
        block = np.array(sent[lo : lo + 500], np.uint64)
        matcher.plan(np.zeros(500, np.int64), block, np.arange(lo, lo + 500), np.full(500, -1))
        upto = min(len(received), at + rng.randrange(300, 500))
        matcher.arrive(0, np.array(received[at:upto], np.uint64), np.zeros(upto - at, np.int64))
        at = upto
    matcher.arrive(0, np.array(received[at:], np.uint64), np.zeros(len(received) - at, np.int64))
    assert matcher.held() <= 1500 + 1000  # the horizon moves with the later passes too
    assert matcher.verdicts()[0] == match_arrays(sent, received).verdict
