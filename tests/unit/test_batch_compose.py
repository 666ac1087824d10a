"""A fan-out's rows of frames: the C composition, its numpy twin and FrameTemplate.stamp agree."""

import random

import numpy as np
import pytest

from rawpacer.headers import FrameTemplate
from rawpacer.writers._batch import Batch

ADDRESSES = {4: ("198.18.0.1", "198.18.0.2"), 6: ("2001:2::1", "2001:2::2")}


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("vlan", [None, 7])
@pytest.mark.parametrize(("size", "payload_len"), [(1500, 1500), (1500, 1472), (1, 1), (64, 0)])
def test_c_and_numpy_compose_the_frames_stamp_builds(version, vlan, size, payload_len):
    src, dst = ADDRESSES[version]
    templates = [FrameTemplate(5001 + p, src_ip=src, dst_ip=dst, vlan=vlan) for p in range(12)]
    rng = random.Random(size)
    messages = [memoryview(rng.randbytes(size)) for _ in templates]
    messages[3] = memoryview(bytes(size))  # all zeros: the checksum still follows RFC 768's rule
    batch = Batch(templates, payload_len)
    start, stop = 2, 11
    c_rows = np.zeros((stop - start, batch.frame_len), np.uint8)
    numpy_rows = np.zeros_like(c_rows)
    batch.compose(c_rows, messages, start, stop)
    batch.python_compose(numpy_rows, messages, start, stop)
    assert c_rows.tobytes() == numpy_rows.tobytes()
    for row, index in zip(c_rows, range(start, stop)):
        assert row.tobytes() == templates[index].stamp(bytes(messages[index][:payload_len]))


def test_a_message_shorter_than_the_payload_is_refused():
    templates = [FrameTemplate(5001, src_ip="198.18.0.1", dst_ip="198.18.0.2")]
    batch = Batch(templates, 100)
    with pytest.raises(ValueError, match="message 0 has 99 bytes, fewer than 100"):
        batch.compose(np.zeros((1, batch.frame_len), np.uint8), [bytes(99)], 0, 1)
