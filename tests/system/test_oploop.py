"""The fan-out op's messages: made during the op before while its readers check, still fresh each op."""

from __future__ import annotations

import pytest
from helpers import make_writer

from rawpacer.bench.oploop import OpLoop
from rawpacer.messages import CryptoSource, FixedSource, MessageSource
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Sandbox

READERS, SIZE, OPS = 20, 600, 4


def noting(source_type: type[MessageSource]) -> type[MessageSource]:
    """``source_type``, noting which buffer each fill went to (``targets``)."""

    class Noting(source_type):  # type: ignore[misc, valid-type]
        def __init__(self, size: int) -> None:
            super().__init__(size)
            self.targets: list[object] = []

        def fill(self, buffer: memoryview | bytearray) -> None:
            self.targets.append(buffer)
            super().fill(buffer)

    return Noting


class SeededReaders(ReaderSet):
    """Readers that, like remote ones, need each op's fill at its start."""

    fill_ahead = False


def writer_for(topo, readers):
    return make_writer(topo, "udp-sendmmsg", readers.ports, message_size=SIZE)


@pytest.fixture(scope="module")
def topo():
    with Sandbox("lo") as topology:
        yield topology


@pytest.mark.parametrize("readers_kind", [ReaderSet, SeededReaders])
def test_every_op_sends_fresh_messages_every_reader_gets_intact(topo, readers_kind):
    source = noting(CryptoSource)(SIZE)
    with readers_kind(topo, READERS, SIZE) as readers, writer_for(topo, readers) as writer:
        loop = OpLoop(writer, readers, source)
        seen = []
        for _ in range(OPS):
            outcome = loop.fanout()
            assert outcome.result.counts.intact == READERS
            seen.append(bytes(readers.buffer))
    assert len(set(seen)) == OPS  # no op's messages are another's
    assert len(source.targets) == (OPS + 1 if readers.fill_ahead else OPS)
    if readers.fill_ahead:  # the first op fills the readers' buffer; every op then makes the next one's aside
        assert source.targets[0] is readers.buffer
        assert all(t is not readers.buffer for t in source.targets[1:])
    else:
        assert all(t is readers.buffer for t in source.targets)


def test_a_fixed_message_is_not_made_ahead(topo):
    source = noting(FixedSource)(SIZE)
    with ReaderSet(topo, READERS, SIZE) as readers, writer_for(topo, readers) as writer:
        loop = OpLoop(writer, readers, source)
        assert all(loop.fanout().result.counts.intact == READERS for _ in range(3))
    assert len(source.targets) == 3 and all(t is readers.buffer for t in source.targets)
