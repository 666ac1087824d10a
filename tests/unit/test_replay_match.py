"""The replay verdict on arrays agrees with its one-at-a-time definition, whatever the network did."""

import random

import pytest

from rawpacer.readers.replaymatch import match_arrays, python_match_flow


def network(rng: random.Random, sent: list[int]) -> list[int]:
    """What arrives of ``sent``: some lost, some repeated, some swapped, some corrupt."""
    out = []
    for value in sent:
        roll = rng.random()
        if roll < 0.1:
            continue
        out.append(value)
        if roll > 0.93:
            out.append(value)
        if roll > 0.97:
            out.append(rng.getrandbits(64))
    for _ in range(len(out) // 8):
        a, b = rng.randrange(len(out)), rng.randrange(len(out))
        out[a], out[b] = out[b], out[a]
    return out


@pytest.mark.parametrize("seed", range(40))
def test_arrays_and_dict_give_the_same_verdict(seed):
    rng = random.Random(seed)
    n = rng.choice([0, 1, 2, 5, 50, 400])
    sent = [rng.getrandbits(64) for _ in range(n)]
    for _ in range(n // 10):  # the capture held some datagrams twice
        sent.insert(rng.randrange(n + 1), rng.choice(sent) if sent else 1)
    sequences = list(range(len(sent))) if seed % 2 else None
    if sequences is not None:  # a repeated content carries the same sequence as its first copy
        first = {}
        sequences = [first.setdefault(value, k) for k, value in enumerate(sent)]
    received = network(rng, sent)
    matched = match_arrays(sent, received, sequences)
    assert matched.verdict == python_match_flow(sent, received, sequences)
    # the intact arrivals point at the first arrival of each content, and at its first send
    assert [received[i] for i in matched.arrivals] == [sent[p] for p in matched.positions]
    assert len(set(matched.arrivals.tolist())) == matched.verdict.intact


def test_an_empty_flow_and_a_flow_that_got_only_strangers():
    assert match_arrays([], []).verdict.sent == 0
    verdict = match_arrays([1, 2], [7, 8, 9]).verdict
    assert (verdict.corrupt, verdict.lost, verdict.intact) == (3, 2, 0)
