"""The transmit engine without root: its libxdp-shaped ring over plain memory (wrap, full), and its
AF_XDP back end against a small UMEM and rings a test plays the kernel for (partial completion,
multi-buffer descriptors, descriptors it refuses to publish), plus sendmmsg on a socketpair."""

from __future__ import annotations

import socket
import struct

import pytest

from rawpacer import engine
from rawpacer.headers.sequence import sequence_of
from rawpacer.pacing import Pacer
from rawpacer.pacing.schedule import ConstantSchedule

ENTRIES_AT = 64
CHUNK = 2048
XDP_PKT_CONTD = 1


def ring_memory(size: int, width: int) -> bytearray:
    return bytearray(ENTRIES_AT + size * width)


def ring(memory: bytearray, size: int, width: int) -> engine.Ring:
    return engine.Ring(memory, 0, 4, 8, ENTRIES_AT, size, width)


def indices(memory: bytearray) -> tuple[int, int]:
    """The shared (producer, consumer) words."""
    return struct.unpack_from("=II", memory, 0)


def test_ring_wraps_with_free_running_indices() -> None:
    memory = ring_memory(4, 8)
    producer, consumer = ring(memory, 4, 8), ring(memory, 4, 8)
    producer.sync(True)
    consumer.sync(False)
    seen = []
    for value in range(10):
        count, index = producer.reserve(1)
        assert count == 1 and index == value
        producer.set_entry(index, 100 + value)
        producer.submit(1)
        count, index = consumer.peek(4)
        assert count == 1
        seen.append(consumer.entry(index)[0])
        consumer.release(1)
    assert seen == list(range(100, 110))
    assert indices(memory) == (10, 10)


def test_ring_full_reserves_only_what_is_free() -> None:
    memory = ring_memory(4, 16)
    producer = ring(memory, 4, 16)
    producer.sync(True)
    assert producer.reserve(3) == (3, 0)
    producer.submit(3)
    assert producer.reserve(3) == (1, 3)  # one left
    producer.submit(1)
    assert producer.reserve(1) == (0, 4)
    struct.pack_into("=I", memory, 4, 2)  # the consumer took two
    assert producer.reserve(4) == (2, 4)


class FakeKernel:
    """Plays the kernel's side of a TX ring and a completion ring: takes descriptors, completes them."""

    def __init__(self, size: int = 4) -> None:
        self.tx_memory, self.cq_memory = ring_memory(size, 16), ring_memory(size, 8)
        self.tx, self.cq = ring(self.tx_memory, size, 16), ring(self.cq_memory, size, 8)
        self.kernel_tx, self.kernel_cq = ring(self.tx_memory, size, 16), ring(self.cq_memory, size, 8)
        self.kernel_tx.sync(False)
        self.kernel_cq.sync(True)
        self.taken: list[tuple[int, int, int]] = []

    def take(self) -> list[tuple[int, int, int]]:
        count, index = self.kernel_tx.peek(64)
        descs = [self.kernel_tx.entry(index + k) for k in range(count)]
        self.kernel_tx.release(count)
        self.taken += descs
        return descs

    def complete(self, count: int) -> None:
        got, index = self.kernel_cq.reserve(count)
        for k in range(got):
            self.kernel_cq.set_entry(index + k, self.taken.pop(0)[0])
        self.kernel_cq.submit(got)


def xdp_engine(kernel: FakeKernel, chunks: int = 4, max_descs: int = 1) -> tuple[engine.Engine, bytearray]:
    umem = bytearray(chunks * CHUNK)
    return engine.xdp(-1, umem, CHUNK, kernel.tx, kernel.cq, False, max_descs), umem


def test_xdp_fills_the_ring_and_resumes_after_a_partial_completion() -> None:
    kernel = FakeKernel()
    xsk, umem = xdp_engine(kernel)
    frames = engine.pool([bytes([k]) * (60 + k) for k in range(3)])
    assert xsk.send(frames, 0, 3, 3) == 3
    descs = kernel.take()
    assert [(d[1], d[2]) for d in descs] == [(60, 0), (61, 0), (62, 0)]
    assert [umem[d[0]] for d in descs] == [0, 1, 2]
    assert xsk.send(frames, 3, 3, 3) == 1  # one chunk left: the send stops short (no kernel to wait for)
    kernel.take()
    assert xsk.in_flight == 4
    kernel.complete(2)  # partial completion: two chunks come back
    assert xsk.send(frames, 4, 3, 3) == 2
    assert xsk.completed == 2 and xsk.in_flight == 4
    assert [umem[d[0]] for d in kernel.take()] == [1, 2]


def test_xdp_frames_longer_than_a_chunk_continue_on_every_descriptor_but_the_last() -> None:
    kernel = FakeKernel(8)
    xsk, umem = xdp_engine(kernel, chunks=8, max_descs=4)
    frame = bytes(range(256)) * 31 + bytes(106)  # 8042 bytes: four 2048-byte chunks
    assert xsk.send(engine.pool([frame]), 0, 1, 1) == 1
    descs = kernel.take()
    assert [(d[1], d[2]) for d in descs] == [(CHUNK, XDP_PKT_CONTD)] * 3 + [(8042 - 3 * CHUNK, 0)]
    assert b"".join(umem[d[0] : d[0] + d[1]] for d in descs) == frame


@pytest.mark.parametrize("frame", [b"", b"x" * (CHUNK + 1)])
def test_xdp_refuses_invalid_descriptors_before_publishing(frame: bytes) -> None:
    kernel = FakeKernel()
    xsk, _ = xdp_engine(kernel)
    with pytest.raises(ValueError, match="does not fit"):
        xsk.send(engine.pool([b"y" * 60, frame]), 0, 2, 2)
    assert indices(kernel.tx_memory) == (0, 0)


def test_xdp_stamps_each_rounds_sequence() -> None:
    kernel = FakeKernel(8)
    xsk, umem = xdp_engine(kernel, chunks=8)
    frames = engine.pool([bytes(64), bytes(64)])
    assert xsk.send(frames, 0, 6, 2, None, (10, 7)) == 6
    assert [sequence_of(umem[d[0] + 10 : d[0] + 18]) for d in kernel.take()] == [7, 7, 8, 8, 9, 9]


def test_mmsg_sends_batches_and_paced_bursts() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with left, right:
        frames = engine.pool([b"one", b"two", b"three"])
        sender = engine.mmsg(left.fileno())
        assert sender.send(frames, 1, 4, 2) == 4
        pacer = Pacer(ConstantSchedule(100_000, 3))
        assert sender.send(frames, 0, 7, 1, pacer.core) == 7
        got = [right.recv(16) for _ in range(11)]
    assert got[:4] == [b"two", b"three", b"one", b"two"]
    assert got[4:] == [b"one", b"two", b"three"] * 2 + [b"one"]
    assert pacer.core.departures == 3 and pacer.core.sent == 7


def test_mmsg_batches_longer_than_the_pool_still_stamp_each_round() -> None:
    """sendmmsg sends from the pool itself, so a batch that wraps it is split where a frame comes round again."""
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with left, right:
        frames = engine.pool([bytes(16), bytes(16)])
        assert engine.mmsg(left.fileno()).send(frames, 0, 7, 5, None, (0, 3)) == 7
        got = [sequence_of(right.recv(16)) for _ in range(7)]
    assert got == [3, 3, 4, 4, 5, 5, 6]


def test_xdp_ignores_a_completion_for_a_chunk_it_did_not_send() -> None:
    """An address the kernel hands back that is not in flight (a descriptor published past the
    engine) never puts a chunk on the free list twice."""
    kernel = FakeKernel()
    xsk, _ = xdp_engine(kernel)
    assert xsk.send(engine.pool([bytes(60)]), 0, 1, 1) == 1
    kernel.take()
    kernel.taken.insert(0, (3 * CHUNK, 60, 0))  # chunk 3 was never sent
    kernel.complete(2)
    assert xsk.reap() == 2
    assert (xsk.stray, xsk.completed, xsk.in_flight) == (1, 2, 0)
