"""ReaderSet: real datagrams in a real namespace, every counter checked, nothing left behind.

The behaviour tests run on both receive loops (the C fast path and the pure-Python fallback);
they assert exact counts, so the two loops agree on every verdict they produce.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading

import pytest
from helpers import ROOT, child_pids, udp_rx_queue, udp_sender, wait_until

from rawpacer.errors import DeliveryError, ReaderDied, UsageError
from rawpacer.messages import MessageSource
from rawpacer.readers import ReaderSet, ReaderTuning
from rawpacer.readers.states import IllegalTransition, State
from rawpacer.sandbox import Sandbox
from rawpacer.writers import WriterOptions, get


@pytest.fixture(scope="module")
def topo():
    with Sandbox("lo") as topology:
        yield topology


@pytest.fixture(params=["c", "python"])
def Readers(request):
    """ReaderSet with the receive loop under test."""
    tuning = ReaderTuning(loop=request.param)
    return lambda *args, **kwargs: ReaderSet(*args, tuning=tuning, **kwargs)


@pytest.fixture
def sender(topo):
    with udp_sender(topo) as send:
        yield send


def fan_out(rs, send, skip=()):
    for port, message in zip(rs.ports, rs.messages):
        if port not in skip:
            send(message, port)


def new_op(rs, kind="crypto"):
    MessageSource.make(kind, rs.message_size).fill(rs.buffer)


def test_every_reader_gets_its_fresh_message(Readers, topo, sender):
    with Readers(topo, 20, 1500) as rs:
        assert rs.ports == tuple(range(5001, 5021))
        for _ in range(3):
            new_op(rs)
            rs.begin()
            fan_out(rs, sender)
            result = rs.wait(strict=True)
            assert (result.counts.delivered, result.counts.intact, result.counts.lost, result.counts.corrupt) == (
                20,
                20,
                0,
                0,
            )
        assert rs.tally.counts.intact == 60 and rs.tally.port(5007).counts.intact == 3


def test_wrong_content_or_length_is_corrupt_and_named(Readers, topo, sender):
    with Readers(topo, 10, 1500) as rs:
        new_op(rs)
        rs.begin()
        fan_out(rs, sender, skip={5003, 5004})
        sender(bytes(rs.messages[0]), 5003)  # reader 5003 gets 5001's message
        sender(bytes(rs.messages[3])[:-1], 5004)  # one byte short
        result = rs.wait()
        assert result.counts.corrupt == 2 and result.counts.intact == 8 and result.counts.lost == 0
        assert result.corrupt_ports == [5003, 5004]
        with pytest.raises(DeliveryError, match="5003, 5004"):
            result.raise_for_loss()
        assert rs.tally.port(5003).counts.corrupt == 1 and rs.tally.port(5003).counts.intact == 0


def test_duplicate_is_counted_not_failed(Readers, topo, sender):
    with Readers(topo, 5, 1000) as rs:
        new_op(rs)
        rs.begin()
        fan_out(rs, sender)
        sender(rs.messages[2], 5003)
        result = rs.wait(strict=True)
        assert result.counts.duplicate == 1 and result.duplicate_ports == [5003]
        assert result.counts.intact == 5 and result.counts.delivered == 6


def test_trimmed_prefix_is_intact(Readers, topo, sender):
    with Readers(topo, 4, 1500) as rs:
        new_op(rs)
        rs.begin(expected_size=1000)
        for port, message in zip(rs.ports, rs.messages):
            sender(message[:1000], port)
        assert rs.wait(strict=True).counts.intact == 4
        rs.begin(expected_size=1000)
        fan_out(rs, sender)  # full messages where prefixes were expected
        assert rs.wait().counts.corrupt == 4


def test_timeout_names_the_missing_ports(Readers, topo, sender):
    with Readers(topo, 30, 200, timeout=0.2) as rs:
        new_op(rs)
        rs.begin()
        fan_out(rs, sender, skip={5002, 5030})
        result = rs.wait(sent=28)
        assert result.timed_out and result.counts.lost == 2 and result.lost_ports == [5002, 5030]
        rs.begin()
        fan_out(rs, sender, skip={5010})
        with pytest.raises(DeliveryError, match=r"lost \(timed out\) on 1 readers: ports 5010"):
            rs.wait(strict=True)
        assert rs.tally.counts.lost == 3 and rs.tally.timeouts == 2 and rs.tally.port(5002).counts.lost == 1


def test_datagrams_between_ops_are_late(Readers, topo, sender):
    with Readers(topo, 3, 100) as rs:
        new_op(rs)
        rs.begin()
        fan_out(rs, sender)
        rs.wait(strict=True)
        sender(rs.messages[1], 5002)
        assert wait_until(lambda: udp_rx_queue(topo, 5002) == 0), "the reader never took the late datagram"
        rs.begin()
        fan_out(rs, sender)
        result = rs.wait(strict=True)
        assert result.counts.late == 1 and result.deviations[5002].counts.late == 1 and result.counts.intact == 3


def test_closed_reader_is_lost_and_named_without_hanging(Readers, topo, sender):
    with Readers(topo, 8, 500, timeout=0.2) as rs:
        new_op(rs)
        rs.close_port(5004)
        for _ in range(2):
            rs.begin()
            fan_out(rs, sender)
            result = rs.wait()
            assert result.lost_ports == [5004] and result.counts.intact == 7
        assert rs.tally.port(5004).counts.lost == 2
        with pytest.raises(UsageError, match="9999"):
            rs.close_port(9999)


def test_killed_reader_process_is_reader_died(Readers, topo, sender):
    rs = Readers(topo, 4, 100)
    try:
        new_op(rs)
        rs.begin()
        os.kill(rs.pid, signal.SIGKILL)
        with pytest.raises(ReaderDied, match="SIGKILL"):
            rs.wait()
        with pytest.raises(ReaderDied, match="SIGKILL"):  # gone for good: not a usage error
            rs.abort()
    finally:
        rs.close()
    assert rs.pid not in child_pids()


def test_close_reaps_the_process_even_after_an_error(topo):
    with pytest.raises(KeyboardInterrupt), ReaderSet(topo, 3, 100) as rs:
        pid = rs.pid
        rs.begin()
        raise KeyboardInterrupt
    assert pid not in child_pids()
    with pytest.raises(ValueError):
        rs.buffer[0]  # released


def test_stream_counts_everything_delivered(Readers, topo, sender):
    with Readers(topo, 10, 300) as rs:
        new_op(rs)
        rs.begin_stream()
        for _ in range(20):
            fan_out(rs, sender)
        result = rs.end_stream(20, strict=True)
        assert result.counts.intact == 200 and result.per_port == 20 and result.mode == "stream"


def test_abort_mid_stream_brings_the_readers_back_to_idle(Readers, topo, sender):
    with Readers(topo, 4, 300) as rs:
        new_op(rs)
        rs.begin_stream(fanouts=10)
        for _ in range(5):
            fan_out(rs, sender)
        assert rs.state is State.STREAM
        rs.abort()
        assert rs.state is State.IDLE
        with pytest.raises(IllegalTransition, match="EndStream is not allowed while the readers are between ops"):
            rs.end_stream(5)
        new_op(rs)
        rs.begin()
        fan_out(rs, sender)
        result = rs.wait(strict=True)
        assert result.counts.intact == 4 and result.counts.lost == 0 and result.mode == "op"
        assert rs.tally.ops == 1  # the aborted stream left no count behind
        rs.abort()  # from idle: nothing to do
        assert rs.state is State.IDLE


def test_abort_after_an_interrupted_wait_drops_the_result_on_its_way(topo, sender):
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    with ReaderSet(topo, 4, 300, timeout=2.0) as rs:
        new_op(rs)
        rs.begin()
        fan_out(rs, sender, skip=rs.ports[:1])  # one port's datagram never comes: the wait blocks
        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        try:
            with pytest.raises(KeyboardInterrupt):
                rs.wait()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert rs.state is State.FINISHING
        rs.abort()
        new_op(rs)
        rs.begin()
        fan_out(rs, sender)
        assert rs.wait(strict=True).counts.intact == 4 and rs.state is State.IDLE


@pytest.mark.parametrize("loop", ["c", "python"])
def test_readers_started_beside_a_busy_thread_deliver_and_check(loop, topo, sender):
    stop = threading.Event()

    def busy() -> None:
        spins = 0
        while not stop.is_set():
            spins += 1

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        with ReaderSet(topo, 50, 500, tuning=ReaderTuning(loop=loop)) as rs:
            with open(f"/proc/{rs.pid}/cmdline", "rb") as handle:
                command = handle.read()
            assert b"rawpacer.readers.spawn" in command  # a fresh interpreter, not a fork of this threaded one
            for _ in range(3):
                new_op(rs)
                rs.begin()
                fan_out(rs, sender)
                assert rs.wait(strict=True).counts.intact == 50
            new_op(rs)
            rs.begin()
            fan_out(rs, sender, skip=rs.ports[:1])
            sender(b"not its message", rs.ports[0])
            result = rs.wait()
            assert (result.counts.intact, result.counts.corrupt, result.corrupt_ports) == (49, 1, [rs.ports[0]])
    finally:
        stop.set()
        thread.join()
    assert rs.pid not in child_pids()


def test_stream_overflow_is_lost_and_the_socket_drops_say_so(Readers, topo):
    with Readers(topo, 4, 1400, rcvbuf=4096) as rs, topo.enter("writer"):
        writer = get("udp-sendmmsg")(topo.target(rs.ports), WriterOptions(message_size=1400))
        with writer:
            new_op(rs)
            rs.begin_stream()
            os.kill(rs.pid, signal.SIGSTOP)  # a reader that falls behind: its tiny buffers overflow
            try:
                for _ in range(300):
                    writer.send(rs.messages)
            finally:
                os.kill(rs.pid, signal.SIGCONT)
            result = rs.end_stream(300, settle=0.1)
            rs.begin()  # the next op starts from the drop counters as they are now
            after = rs.wait(writer.send(rs.messages), strict=True)
    assert result.counts.lost > 0 and result.counts.delivered + result.counts.lost == 1200
    assert result.counts.intact == result.counts.delivered and not result.ok
    assert result.counts.socket_drops == result.counts.lost, "every datagram lost here was dropped at a full socket"
    assert sum(t.counts.socket_drops for t in result.deviations.values()) == result.counts.socket_drops
    assert "dropped by full reader socket buffers" in result.describe()
    assert after.counts.socket_drops == 0 and rs.tally.counts.socket_drops == result.counts.socket_drops


@pytest.mark.parametrize("kind", ["lo", "veth"])
@pytest.mark.parametrize("count", [1, 100, 10_000])
def test_readers_deliver_intact_through_the_fast_path(kind, count):
    with Sandbox(kind) as topology, ReaderSet(topology, count, 64, tuning=ReaderTuning(loop="c")) as rs:
        assert len(set(rs.ports)) == count and rs.loop == "c"
        with topology.enter("writer"):
            writer = get("udp-sendmmsg")(topology.target(rs.ports), WriterOptions(message_size=64))
        with writer:
            for _ in range(2):
                new_op(rs)
                rs.begin()
                result = rs.wait(writer.send(rs.messages), strict=True)
                assert result.reader_checked == count and result.reader_busy_s > 0
            rs.begin_stream()
            for _ in range(5):
                writer.send(rs.messages)
            assert rs.end_stream(5, strict=True).counts.intact == 5 * count
        assert rs.tally.counts.intact == 7 * count and rs.tally.counts.socket_drops == 0


def test_rlimit_that_cannot_be_raised_is_one_clear_line():
    """The reader process's RawpacerError reaches the caller as its own one line, not wrapped."""
    code = (
        "from rawpacer.sandbox import Sandbox; from rawpacer.readers import ReaderSet\n"
        "with Sandbox('lo') as topo:\n"
        "    try:\n"
        "        ReaderSet(topo, 5000, 10)\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, str(exc))"
    )
    proc = subprocess.run(
        [
            "setpriv",
            "--inh-caps=-sys_resource",
            "--bounding-set=-sys_resource",
            "--",
            "sh",
            "-c",
            f'ulimit -n 200 && exec {sys.executable} -c "{code}"',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.startswith("RawpacerError 5000 readers need 5064 open files but RLIMIT_NOFILE is 200"), proc
    assert len(proc.stdout.strip().splitlines()) == 1 and "reader process failed" not in proc.stdout


def test_soft_rlimit_is_raised_for_the_readers(topo):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # the reader process inherits 256
    try:
        with ReaderSet(topo, 1500, 10) as rs:
            assert len(rs.ports) == 1500
            with open(f"/proc/{rs.pid}/limits") as handle:
                line = next(line for line in handle if line.startswith("Max open files"))
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 256  # raised in the reader, not here
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert int(line.split()[3]) >= 1500


def test_tallies_are_json(Readers, topo, sender):
    with Readers(topo, 3, 100, timeout=0.1) as rs:
        new_op(rs)
        rs.begin()
        fan_out(rs, sender, skip={5001})
        op = rs.wait()
        text = json.dumps({"op": op.to_dict(), "run": rs.tally.to_dict(ports=True)})
    data = json.loads(text)
    assert data["op"]["lost_ports"] == [5001] and data["run"]["per_port"][0]["lost"] == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"count": 0}, "reader count 0"),
        ({"count": 10_001}, "reader count 10001"),
        ({"message_size": 0}, "message size 0"),
        ({"message_size": 70_000}, "message size 70000"),
        ({"timeout": 0}, "timeout 0"),
    ],
)
def test_bad_construction_is_a_usage_error(topo, kwargs, match):
    args = {"count": 2, "message_size": 100} | kwargs
    with pytest.raises(UsageError, match=match):
        ReaderSet(topo, args.pop("count"), args.pop("message_size"), **args)


def test_bad_call_order_is_a_usage_error(topo):
    with ReaderSet(topo, 2, 100) as rs:
        with pytest.raises(UsageError, match="begin"):
            rs.wait()
        with pytest.raises(UsageError, match="expected size 101"):
            rs.begin(expected_size=101)
        rs.begin()
        with pytest.raises(UsageError, match="running an op: call wait"):
            rs.begin()
        with pytest.raises(UsageError, match="sent per port 0"):
            rs.end_stream(0)
