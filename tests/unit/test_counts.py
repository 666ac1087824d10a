"""``Counts``: one value type for what readers counted, from a port's verdict to the report."""

from __future__ import annotations

import pytest

from rawpacer.readers.counts import NAMES, Counts, total
from rawpacer.readers.tally import PortTally


def test_counts_add_field_by_field_and_the_extent_is_the_largest():
    a = Counts(delivered=3, intact=2, corrupt=1, late=4, socket_drops=5, reordered=1, reorder_extent=7)
    b = Counts(delivered=1, intact=1, duplicate=2, lost=3, reordered=2, reorder_extent=2)
    assert a + b == Counts(4, 3, 1, 2, 3, 4, 5, 3, 7)
    assert total([a, b, Counts()]) == a + b and total([]) == Counts()


def test_every_field_reaches_the_json_and_comes_back():
    counts = Counts(*range(1, len(NAMES) + 1))
    assert list(counts.to_dict()) == list(NAMES)
    assert Counts.of(counts.to_dict() | {"sent": 99}) == counts
    assert Counts(*counts.as_row()) == counts
    tally = PortTally(5001, counts)
    assert PortTally.from_row(tally.as_row()) == tally and tally.to_dict() == {"port": 5001, **counts.to_dict()}


def test_counts_are_values():
    counts = Counts(delivered=1)
    with pytest.raises(AttributeError):
        counts.delivered = 2  # type: ignore[misc]
    assert Counts(intact=5, reordered=2).in_order == 3 and hash(counts) == hash(Counts(delivered=1))
