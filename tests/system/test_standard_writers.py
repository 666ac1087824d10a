"""The three standard writers deliver every message intact, on lo and across a veth link."""

from __future__ import annotations

import errno

import pytest
from helpers import STANDARD_WRITERS, make_writer

from rawpacer.errors import UsageError
from rawpacer.messages import MessageSource
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Sandbox
from rawpacer.writers import get, names
from rawpacer.writers.udp_concurrent import PoolKnobs


@pytest.fixture(scope="module", params=["lo", "veth"])
def topo(request):
    with Sandbox(request.param, mtu=1500 if request.param == "veth" else None) as topology:
        yield topology


def test_the_seed_writers_are_registered_as_standard():
    assert {"udp-sendto", "udp-concurrent", "udp-sendmmsg"} <= set(STANDARD_WRITERS)
    assert all(not get(name).raw for name in STANDARD_WRITERS) and set(STANDARD_WRITERS) < set(names())


@pytest.mark.parametrize("count", [1, 100, 1000])
@pytest.mark.parametrize("name", STANDARD_WRITERS)
def test_writer_delivers_fresh_messages_intact(topo, name, count):
    source = MessageSource.make("crypto", 1500)
    with ReaderSet(topo, count, 1500) as rs, make_writer(topo, name, rs.ports) as writer:
        assert writer.delivered_size == 1500 and writer.trimmed_bytes == 0
        previous = None
        for _ in range(3):
            source.fill(rs.buffer)
            assert bytes(rs.messages[0]) != previous
            previous = bytes(rs.messages[0])
            rs.begin(writer.delivered_size)
            sent = writer.send(rs.messages)
            result = rs.wait(sent, strict=True)
            assert sent == count and result.counts.intact == count
        assert rs.tally.counts.intact == 3 * count and rs.tally.counts.corrupt == 0


@pytest.mark.parametrize("name", STANDARD_WRITERS)
def test_big_messages_are_fragmented_by_the_kernel(topo, name):
    with ReaderSet(topo, 20, 9000) as rs, make_writer(topo, name, rs.ports, message_size=9000) as writer:
        MessageSource.make("fast", 9000).fill(rs.buffer)
        rs.begin()
        assert rs.wait(writer.send(rs.messages), strict=True).counts.intact == 20


@pytest.mark.parametrize("name", STANDARD_WRITERS)
def test_bytes_messages_work_too(topo, name):
    source = MessageSource.make("crypto", 700)
    with ReaderSet(topo, 5, 700) as rs, make_writer(topo, name, rs.ports, message_size=700) as writer:
        for _ in range(2):
            messages = [source.message() for _ in rs.ports]
            for slot, message in zip(rs.messages, messages):
                slot[:] = message
            rs.begin()
            assert rs.wait(writer.send(messages), strict=True).counts.intact == 5


@pytest.mark.parametrize("name", STANDARD_WRITERS)
def test_wrong_number_of_messages_is_a_usage_error(topo, name):
    with (
        make_writer(topo, name, (5001, 5002)) as writer,
        pytest.raises(UsageError, match="3 messages for 2 reader ports"),
    ):
        writer.send([b"x"] * 3)


def test_negative_threads_is_a_usage_error(topo):
    with pytest.raises(UsageError, match="threads -1"):
        make_writer(topo, "udp-concurrent", (5001,), PoolKnobs(threads=-1))


def test_sendmmsg_errors_carry_the_errno(topo):
    """The engine's sendmmsg back end raises the kernel's errno (a datagram over 65,507 bytes)."""
    with make_writer(topo, "udp-sendmmsg", (5001,)) as writer:
        with pytest.raises(OSError) as info:
            writer.send([bytes(70_000)])
        assert info.value.errno == errno.EMSGSIZE
