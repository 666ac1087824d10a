"""The AF_XDP writer's pure parts: struct layouts, ring and chunk sizes, knob checks (the descriptors
the engine writes: tests/unit/test_engine_ring.py)."""

from __future__ import annotations

import pytest

from rawpacer.errors import UsageError
from rawpacer.kernel.afxdp import (
    DESC,
    STATISTICS,
    STATISTICS_FIELDS,
    check_chunk_size,
    check_ring,
    chunks_for,
    next_power_of_two,
)
from rawpacer.writers.xdp import XdpKnobs


def test_struct_layouts_match_if_xdp_h() -> None:
    assert DESC.itemsize == 16 and [DESC.fields[f][1] for f in ("addr", "len", "options")] == [0, 8, 12]
    assert STATISTICS.size == 8 * len(STATISTICS_FIELDS) == 48


@pytest.mark.parametrize(
    "length,chunk,expected", [(1, 4096, 1), (4096, 4096, 1), (4097, 4096, 2), (60042, 4096, 15), (8042, 2048, 4)]
)
def test_chunks_for(length: int, chunk: int, expected: int) -> None:
    assert chunks_for(length, chunk) == expected


def test_ring_and_chunk_sizes_are_checked() -> None:
    assert [check_ring("tx_ring", n) for n in (1, 2, 2048)] == [1, 2, 2048]
    for bad in (0, 3, -4, 1.0, True):
        with pytest.raises(UsageError, match="tx_ring .* is not allowed; use a power of two"):
            check_ring("tx_ring", bad)
    assert check_chunk_size(2048) == 2048
    for bad in (1024, 3000, 1 << 20):
        with pytest.raises(UsageError, match="chunk_size .* is not allowed; use one of"):
            check_chunk_size(bad)
    assert [next_power_of_two(n) for n in (0, 1, 2, 3, 512, 513)] == [1, 1, 2, 4, 512, 1024]


@pytest.mark.parametrize(
    "knobs,message",
    [
        ({"queue": -1}, "queue -1 is not allowed"),
        ({"chunk_size": 1000}, "chunk_size 1000 is not allowed"),
        ({"chunks": -2}, "chunks -2 is not allowed"),
        ({"tx_ring": 48}, "tx_ring 48 is not allowed; use a power of two"),
        ({"completion_ring": 5}, "completion_ring 5 is not allowed"),
        ({"mode": "fast"}, "xdp mode 'fast' is not allowed; use one of: auto, copy, zerocopy"),
        ({"need_wakeup": 1}, "need_wakeup 1 is not allowed"),
        ({"multi_buffer": "yes"}, "multi_buffer 'yes' is not allowed"),
        ({"tx_budget": 16}, "tx_budget 16 is not allowed; use 0 .automatic. or 32 and more"),
    ],
)
def test_knobs_name_the_bad_value_and_what_is_allowed(knobs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        XdpKnobs(**knobs)  # type: ignore[arg-type]  # wrong types on purpose


def test_default_knobs_are_automatic() -> None:
    knobs = XdpKnobs()
    assert (knobs.chunks, knobs.tx_ring, knobs.tx_budget, knobs.mode, knobs.multi_buffer) == (0, 0, 0, "auto", None)
