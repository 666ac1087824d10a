"""The readers' additions for pacing, hardening and capacity, on real sockets: kernel RX timestamps,
bounded silence, every byte checked, IPv6 sockets, and the C and Python loops agreeing."""

from __future__ import annotations

import dataclasses
import random
import socket
import threading
import time

import numpy as np
import pytest
from helpers import udp_rx_queue, udp_sender, wait_until
from pyroute2 import IPRoute
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

from rawpacer.messages import MessageSource
from rawpacer.readers import ReaderSet, ReaderTuning
from rawpacer.sandbox import Sandbox
from rawpacer.sandbox.topology import write_sysctls
from rawpacer.writers import WriterOptions, get

V6_READER = "2001:2::1"  # RFC 5180's IPv6 benchmarking range, inside the sandbox only


@pytest.fixture(scope="module")
def topo():
    with Sandbox("lo") as topology:
        yield topology


@pytest.fixture
def sender(topo):
    with udp_sender(topo) as send:
        yield send


@pytest.fixture(params=["c", "python"])
def Readers(request):
    """ReaderSet with the receive loop under test."""
    tuning = ReaderTuning(loop=request.param)
    return lambda *args, **kwargs: ReaderSet(*args, tuning=tuning, **kwargs)


def fresh(rs, kind="crypto"):
    MessageSource.make(kind, rs.message_size).fill(rs.buffer)


def fan_out(rs, send, skip=()):
    for port, message in zip(rs.ports, rs.messages):
        if port not in skip:
            send(message, port)


def test_a_corrupted_byte_anywhere_is_caught(topo):
    """Each of the 1500 byte positions is flipped once, in a different datagram: all 1500 are corrupt."""
    with ReaderSet(topo, 100, 1500) as rs, topo.enter("writer"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            fresh(rs)
            rs.begin_stream()
            for fanout in range(15):
                for slot, (port, message) in enumerate(zip(rs.ports, rs.messages)):
                    body = bytearray(message)
                    body[fanout * 100 + slot] ^= 0x80
                    sock.sendto(body, (topo.reader_ip, port))
            result = rs.end_stream(15)
    assert (result.counts.corrupt, result.counts.intact, result.counts.lost, result.counts.delivered) == (
        1500,
        0,
        0,
        1500,
    )


KINDS = ["ok", "ok", "ok", "flip", "short", "long", "dup", "none"]


def mixed_ops(rs, topo, sender, seed):
    """Three ops of a seeded mix of intact, corrupt, short, long, duplicate, missing and late datagrams."""
    rng = random.Random(seed)
    outcomes = []
    for _ in range(3):
        fresh(rs, "fixed")
        late = rs.ports[rng.randrange(len(rs.ports))]
        sender(b"late", late)
        assert wait_until(lambda port=late: udp_rx_queue(topo, port) == 0)  # taken between ops, as late
        rs.begin()
        for port, message in zip(rs.ports, rs.messages):
            body = bytes(message)
            # no duplicate on the last port: its first copy may complete the op while the second is
            # still on its way, and which op then counts it would be a race, not a verdict
            kinds = KINDS if port != rs.ports[-1] else [k for k in KINDS if k != "dup"]
            for kind in rng.choices(kinds, k=2):
                if kind == "flip":
                    body = body[:9] + bytes([body[9] ^ 1]) + body[10:]
                elif kind == "short":
                    body = body[:-1]
                elif kind == "long":
                    body += b"!"
                elif kind == "dup":
                    sender(body, port)
                elif kind == "none":
                    body = b""
                    break
            if body:
                sender(body, port)
        result = rs.wait()
        outcomes.append((result.counts, sorted((p, t.to_dict()) for p, t in result.deviations.items())))
    return outcomes


def test_python_and_c_loops_agree_on_mixed_traffic(topo, sender):
    runs = []
    for loop in ("c", "python"):
        with ReaderSet(topo, 20, 300, timeout=0.3, tuning=ReaderTuning(loop=loop)) as rs:
            runs.append(mixed_ops(rs, topo, sender, seed=7))
    assert runs[0] == runs[1]
    totals = [counts for counts, _ in runs[0]]
    assert all(any(getattr(c, k) for c in totals) for k in ("corrupt", "duplicate", "lost", "late"))


def test_loops_that_poll_only_within_an_op_agree_with_spinning_ones(topo, sender):
    """poll_op (sleep until an op's first datagram, then poll to its end), C and Python: the same
    verdicts as a loop that spins through the op, late datagrams between ops included."""
    runs = []
    for tuning in (
        ReaderTuning(loop="c", spin=True),
        ReaderTuning(loop="c", spin=False, poll_op=True),
        ReaderTuning(loop="python", spin=False, poll_op=True),
    ):
        with ReaderSet(topo, 20, 300, timeout=0.3, tuning=tuning) as rs:
            runs.append(mixed_ops(rs, topo, sender, seed=11))
    assert runs[0] == runs[1] == runs[2]
    assert any(counts.late for counts, _ in runs[0])


def test_kernel_timestamps_come_with_every_datagram(Readers, topo, sender):
    with Readers(topo, 5, 200) as rs:
        fresh(rs)
        before, started = time.time_ns(), time.monotonic_ns()
        rs.begin(timestamps=True)
        fan_out(rs, sender, skip={5002})
        sender(b"wrong", 5002)
        sender(rs.messages[3], 5004)
        result = rs.wait()
        after, ended = time.time_ns(), time.monotonic_ns()
        assert started <= result.reader_first_ns <= result.reader_last_ns <= ended
        arrivals = result.arrivals
        assert arrivals is not None and len(arrivals) == result.counts.delivered == 6
        assert ((arrivals.rx_ns >= before) & (arrivals.rx_ns <= after)).all()
        ports = np.asarray(rs.ports)
        assert sorted(ports[arrivals.slot].tolist()) == [5001, 5002, 5003, 5004, 5004, 5005]
        assert ports[arrivals.slot[~arrivals.match]].tolist() == [5002]
        rs.begin()
        fan_out(rs, sender)
        assert rs.wait(strict=True).arrivals is None  # off again: nothing kept


def test_timestamped_stream_keeps_every_arrival(Readers, topo):
    with Readers(topo, 10, 100) as rs, topo.enter("writer"):
        writer = get("udp-sendmmsg")(topo.target(rs.ports), WriterOptions(message_size=100))
        with writer:
            fresh(rs)
            rs.begin_stream(timestamps=True)
            for _ in range(2000):
                writer.send(rs.messages)
            result = rs.end_stream(2000, strict=True)
    ordered = result.arrivals.in_arrival_order()
    assert len(ordered) == 20_000 and ordered.match.all()
    assert np.bincount(ordered.slot, minlength=10).tolist() == [2000] * 10
    assert (np.diff(ordered.rx_ns) >= 0).all() and 0 < ordered.rx_ns[-1] - ordered.rx_ns[0] < 60e9


def test_silence_ends_a_lossy_op_early(Readers, topo, sender):
    with Readers(topo, 6, 100, timeout=30) as rs:
        fresh(rs)
        rs.begin()
        fan_out(rs, sender, skip={5006})
        result = rs.wait(silence=0.05)
    assert result.timed_out and result.lost_ports == [5006]
    assert result.wait_s < 15, "gave up on silence, not after the 30 s time-out"


def test_silence_counts_from_the_last_arrival(Readers, topo, sender):
    """Datagrams 0.1 s apart keep an op with a 0.6 s silence going for longer than 0.6 s."""
    with Readers(topo, 8, 100, timeout=30) as rs:
        fresh(rs)
        rs.begin()

        def trickle():
            for port, message in zip(rs.ports, rs.messages):
                time.sleep(0.1)
                sender(message, port)

        thread = threading.Thread(target=trickle)
        thread.start()
        try:
            result = rs.wait(silence=0.6)
        finally:
            thread.join()
    assert not result.timed_out and result.counts.intact == 8


def test_ipv6_reader_address_gets_ipv6_sockets(topo):
    with topo.enter("reader"):
        write_sysctls({"net/ipv6/conf/all/disable_ipv6": "0", "net/ipv6/conf/lo/disable_ipv6": "0"})
        with IPRoute() as ipr:
            lo = ipr.link_lookup(ifname="lo")[0]
            ipr.addr("add", index=lo, address=V6_READER, prefixlen=64, flags=IFA_F_NODAD)
    v6 = dataclasses.replace(topo, reader_ip=V6_READER, writer_ip=V6_READER)
    with ReaderSet(v6, 8, 1200) as rs, topo.enter("writer"):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        with sock:
            fresh(rs)
            rs.begin(timestamps=True)
            for port, message in zip(rs.ports, rs.messages):
                sock.sendto(message, (V6_READER, port))
            result = rs.wait(strict=True)
    assert result.counts.intact == 8 and len(result.arrivals) == 8


def test_bad_silence_and_timestamps_are_usage_errors(topo):
    from rawpacer.errors import UsageError

    with ReaderSet(topo, 2, 100) as rs:
        with pytest.raises(UsageError, match="timestamps 'yes'"):
            rs.begin(timestamps="yes")
        rs.begin()
        for bad in (0, -1.0, "1s", True):
            with pytest.raises(UsageError, match="silence"):
                rs.wait(silence=bad)
        rs.wait(0)
