"""A replay's recording process in a real veth sandbox (MTU 9000), its C loop against its Python
twin: the same traffic to several slots (an empty datagram, a 1-byte one, one at the MTU, one
fragmented, the largest UDP allows, then 20,000 across the slots) gives the same ``Received``
(slot, length, digest, in arrival order) from both, with kernel receive stamps; datagrams the
kernel drops while the process is stopped are counted; a collect with nothing arrived is empty;
the process imports no numpy."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from helpers import udp_sender

from rawpacer.readers.replay import Received, ReplayReaders
from rawpacer.readers.replaymatch import python_datagram_hash
from rawpacer.sandbox import Sandbox

SLOTS = 4
MANY = 20_000
RECORDERS = ("c", "python")


@pytest.fixture(scope="module")
def topo():
    with Sandbox("veth", mtu=9000) as topology:
        yield topology


def special() -> list[tuple[int, bytes]]:
    """(slot, payload): empty, 1 byte, the MTU's largest unfragmented IPv4 UDP payload, one that is
    fragmented, and the largest any UDP datagram carries over IPv4 (RFC 768: 65,535 - 28)."""
    sizes = [0, 1, 9000 - 28, 9000, 65_507, 64, 1472]
    return [(i % SLOTS, bytes((i + n) & 0xFF for n in range(size))) for i, size in enumerate(sizes)]


def many() -> list[tuple[int, bytes]]:
    """MANY datagrams round the slots, each payload distinct (its index), 8-1400 bytes."""
    return [(i % SLOTS, i.to_bytes(8, "big") * (1 + i % 175)) for i in range(MANY)]


def record(topo, recorder: str, rounds: list[list[tuple[int, bytes]]]) -> list[tuple[Received, int, int]]:
    """Each round sent to the readers, then collected: (received, realtime before, after) per round."""
    out = []
    with ReplayReaders(topo, SLOTS, recorder=recorder) as readers, udp_sender(topo) as send:
        assert readers.recorder == recorder
        for datagrams in rounds:
            before = time.time_ns()
            for slot, data in datagrams:
                send(data, readers.ports[slot])
            after = time.time_ns()
            out.append((readers.collect(0.2), before, after))
    return out


def test_the_c_loop_and_its_python_twin_record_the_same(topo):
    rounds = [special(), many()]
    results = {recorder: record(topo, recorder, rounds) for recorder in RECORDERS}
    for index, datagrams in enumerate(rounds):
        c_got, before, after = results["c"][index]
        py_got = results["python"][index][0]
        assert c_got.socket_drops == py_got.socket_drops == 0
        assert c_got.slot.tolist() == py_got.slot.tolist() == [slot for slot, _ in datagrams]
        assert c_got.length.tolist() == py_got.length.tolist() == [len(data) for _, data in datagrams]
        assert c_got.digest.tolist() == py_got.digest.tolist()
        for slot in range(SLOTS):
            assert c_got.of_slot(slot) == [python_datagram_hash(d) for s, d in datagrams if s == slot]
        # kernel stamps as each left the writer, in send order (collect() sorts by them, and the slots
        # and lengths came out in send order above)
        assert before <= c_got.rx_ns[0] and c_got.rx_ns[-1] <= after and (np.diff(c_got.rx_ns) >= 0).all()


@pytest.mark.parametrize("recorder", RECORDERS)
def test_a_collect_with_nothing_arrived_is_empty(topo, recorder):
    with ReplayReaders(topo, 2, recorder=recorder) as readers:
        got = readers.collect(0.05)
        assert (got.slot.size, got.length.size, got.digest.size, got.rx_ns.size, got.socket_drops) == (0, 0, 0, 0, 0)
        with udp_sender(topo) as send:
            send(b"late", readers.ports[1])
        again = readers.collect(0.05)
    assert again.slot.tolist() == [1] and again.of_slot(1) == [python_datagram_hash(b"late")]


@pytest.mark.parametrize("recorder", RECORDERS)
def test_datagrams_the_kernel_drops_are_counted(topo, recorder):
    """The recording process stopped, a burst overflows its small buffer; once it runs again it
    records what the socket held, and every other datagram is a drop."""
    sent = 300
    with ReplayReaders(topo, 1, rcvbuf=4096, recorder=recorder) as readers, udp_sender(topo) as send:
        os.kill(readers.pid, signal.SIGSTOP)
        try:
            for i in range(sent):
                send(i.to_bytes(4, "big") * 25, readers.ports[0])
        finally:
            os.kill(readers.pid, signal.SIGCONT)
        got = readers.collect(0.2)
    assert got.socket_drops > 0 and got.slot.size > 0 and got.slot.size + got.socket_drops == sent
    wanted = {python_datagram_hash(i.to_bytes(4, "big") * 25) for i in range(sent)}
    assert set(got.of_slot(0)) <= wanted and len(set(got.of_slot(0))) == got.slot.size


@pytest.mark.parametrize("recorder", RECORDERS)
def test_the_recording_process_imports_no_numpy(topo, recorder):
    with ReplayReaders(topo, 1, recorder=recorder) as readers, open(f"/proc/{readers.pid}/maps") as handle:
        maps = handle.read()
    assert "numpy" not in maps and "_multiarray" not in maps
