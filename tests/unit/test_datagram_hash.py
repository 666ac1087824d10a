"""rawpacer's datagram hash: the C function and its Python twin agree, and it tells datagrams apart."""

import random

import pytest

from rawpacer._checksum import datagram_hash as c_hash
from rawpacer.readers.replaymatch import datagram_hash, python_datagram_hash


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 23, 24, 31, 32, 33, 63, 64, 65, 100, 1472, 1500, 9000])
def test_c_and_python_agree_at_every_length_around_the_block_edges(length):
    rng = random.Random(length)
    for _ in range(5):
        data = rng.randbytes(length)
        assert c_hash(data) == python_datagram_hash(data)
        assert datagram_hash(bytearray(data)) == datagram_hash(memoryview(data))


def test_one_changed_word_or_byte_or_length_changes_the_hash():
    rng = random.Random(7)
    base = rng.randbytes(1500)
    seen = {c_hash(base)}
    for at in range(0, 1500, 37):
        changed = bytearray(base)
        changed[at] ^= 1 << (at % 8)
        seen.add(c_hash(changed))
    seen.add(c_hash(base[:-1]))
    seen.add(c_hash(base + b"\0"))  # zero padding does not hide a longer datagram
    assert len(seen) == len(range(0, 1500, 37)) + 3


def test_distinct_payloads_of_a_stream_do_not_collide():
    hashes = {c_hash(i.to_bytes(8, "big") + bytes(10)) for i in range(200_000)}
    assert len(hashes) == 200_000
