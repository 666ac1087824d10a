"""Message sources: right size, fresh per call (or fixed on purpose), fill whole buffers in place."""

from __future__ import annotations

import mmap

import pytest

from rawpacer.errors import UsageError
from rawpacer.messages import KINDS, MessageSource


@pytest.mark.parametrize("kind", KINDS)
def test_message_has_the_size_and_a_name(kind):
    source = MessageSource.make(kind, 1500)
    assert source.name == kind
    assert len(source.message()) == 1500


@pytest.mark.parametrize("kind", ["crypto", "fast"])
def test_fresh_sources_never_repeat(kind):
    source = MessageSource.make(kind, 64)
    seen = {source.message() for _ in range(200)}
    assert len(seen) == 200


def test_fixed_source_repeats_one_message():
    source = MessageSource.make("fixed", 100)
    assert source.message() == source.message()


@pytest.mark.parametrize("kind", KINDS)
def test_fill_writes_every_slot_of_shared_memory(kind):
    size, count = 1500, 7
    shared = mmap.mmap(-1, size * count)
    view = memoryview(shared)
    source = MessageSource.make(kind, size)
    source.fill(view)
    slots = [bytes(view[i * size : (i + 1) * size]) for i in range(count)]
    assert all(slot.count(0) < size // 16 for slot in slots), "slots look unfilled"
    if kind == "fixed":
        assert len(set(slots)) == 1
    else:
        assert len(set(slots)) == count
        before = bytes(view)
        source.fill(view)
        assert bytes(view) != before
    view.release()
    shared.close()


def test_fill_handles_a_length_not_multiple_of_eight():
    buffer = bytearray(1501 * 3)
    MessageSource.make("fast", 1501).fill(buffer)
    assert buffer[-8:] != bytes(8)


@pytest.mark.parametrize(
    "kind, size", [("bogus", 1500), ("crypto", 0), ("crypto", 65508), ("fast", "1500"), ("fixed", True)]
)
def test_bad_kind_or_size_is_a_usage_error_naming_it(kind, size):
    with pytest.raises(UsageError, match=repr(kind) if kind == "bogus" else "out of range 1-65507"):
        MessageSource.make(kind, size)
