"""Paced streams through real sockets in sandboxes, measured by kernel receive timestamps.

The machine is shared and loaded, so these assert the machinery and gross errors: every datagram
arrives intact and in order, the pacer's record matches what left, the achieved rate is within
20 % of what the pacer's own record says it should be (the target, pushed back by any stalls it
counted) and never above the target. Precision belongs to benchmarks/pacing_bench.py.
"""

from __future__ import annotations

import errno
import math
import signal
import socket
import time

import numpy as np
import pytest

from rawpacer import engine
from rawpacer.headers import FrameTemplate
from rawpacer.pacing import (
    IMPLEMENTATION,
    ConstantSchedule,
    Pacer,
    PoissonSchedule,
    Schedule,
    rxstamp,
    stream_stats,
)
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.writers._packet_socket import open_packet_socket

PORT = 5001
IMPLEMENTATIONS = sorted({"python", IMPLEMENTATION})
"""The pacer's cores here: pure Python always, C when the extension is built."""


def reader(topo: Topology) -> socket.socket:
    with topo.enter("reader"):
        return rxstamp.open_reader(topo.reader_ip, PORT)


def payloads(count: int = 7, size: int = 200) -> list[bytes]:
    return [bytes([k]) * size for k in range(count)]


def frames_on(
    tx: socket.socket, frames: list[bytes], destinations: list[tuple[str, int]] | None = None
) -> engine.Frames:
    """``frames`` on ``tx`` by the engine's sendmmsg back end, one a call unpaced, to ``destinations`` or on the bound socket."""
    sockaddrs = None if destinations is None else engine.addressed(destinations)
    return engine.Frames(engine.mmsg(tx.fileno()), engine.pool(frames, sockaddrs), 1)


def receive(sock: socket.socket, count: int) -> tuple[np.ndarray, list[bytes]]:
    """Timestamps and contents of up to ``count`` datagrams (stops after 1 s of silence)."""
    got: list[bytes] = []

    def keep(data: bytes, address: object) -> bool:
        got.append(data)
        return True

    return rxstamp.collect(sock, count, idle_s=1.0, keep=keep), got


def check_rate(stamps: np.ndarray, pacer: Pacer, schedule: Schedule) -> dict:
    """The stream's figures; its achieved rate within 20 % of what the pacer's record predicts."""
    stats = stream_stats(
        stamps, rate_pps=schedule.rate_pps, burst=schedule.burst, pattern=schedule.pattern, pacer=pacer.report()
    )
    departures = schedule.departures(len(stamps))
    expected_span = schedule.offset_ns(departures - 1) + pacer.report().stalled_ns
    expected = (departures - 1) * schedule.burst * 1e9 / expected_span
    assert stats["rate_achieved_pps"] == pytest.approx(expected, rel=0.2)
    if schedule.pattern == "constant":
        assert stats["rate_achieved_pps"] <= 1.2 * schedule.rate_pps, "a pacer never runs ahead of its schedule"
    return stats


@pytest.mark.parametrize(
    "way", [*(f"pacer.wait/{i}" for i in IMPLEMENTATIONS), *(f"engine/{i}" for i in IMPLEMENTATIONS)]
)
def test_paced_udp_on_lo_arrives_intact_at_its_rate(way):
    count, frames = 1000, payloads()
    schedule = ConstantSchedule(5000)
    how, core = way.split("/")
    with Sandbox("lo") as topo, reader(topo) as rx:
        with topo.enter("writer"):
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with tx:
            pacer = Pacer(schedule, implementation=core)
            if how == "pacer.wait":
                for i in range(count):
                    pacer.wait(i)
                    tx.sendto(frames[i % len(frames)], (topo.reader_ip, PORT))
            else:
                sender = frames_on(tx, frames, [(topo.reader_ip, PORT)] * len(frames))
                assert engine.paced(sender, pacer, count) == count == sender.engine.sent
                assert pacer.implementation == ("c-loop" if core == "c" else "python")
        stamps, got = receive(rx, count)
    assert got == [frames[k % len(frames)] for k in range(count)], "every datagram, intact, in order"
    assert pacer.report().departures == count == len(pacer.lateness())
    stats = check_rate(stamps, pacer, schedule)
    assert stats["datagrams"] == count and stats["timestamps"] == "kernel-rx"


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_paced_frames_in_bursts_on_an_af_packet_socket(implementation):
    count, burst = 800, 4
    schedule = ConstantSchedule(8000, burst)
    with Sandbox("lo") as topo, reader(topo) as rx:
        link = topo.link()
        template = FrameTemplate(
            PORT, src_ip=topo.writer_ip, dst_ip=topo.reader_ip, src_mac=link.src_mac, dst_mac=link.dst_mac
        )
        messages = payloads(5)
        with topo.enter("writer"):
            tx = open_packet_socket(topo.writer_if)
        with tx:
            pacer = Pacer(schedule, implementation=implementation)
            sender = frames_on(tx, [template.stamp(m) for m in messages])
            engine.paced(sender, pacer, count // 2)
            engine.paced(sender, pacer, count - count // 2, count // 2)  # a stream goes on where the last call stopped
        stamps, got = receive(rx, count)
    assert got == [messages[k % len(messages)] for k in range(count)]
    assert pacer.report().departures == count // burst
    check_rate(stamps, pacer, schedule)


def test_poisson_stream_on_veth():
    count = 1000
    schedule = PoissonSchedule(5000, seed=11)
    with Sandbox("veth") as topo, reader(topo) as rx:
        with topo.enter("writer"):
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with tx:
            pacer = Pacer(schedule)
            engine.paced(frames_on(tx, payloads(), [(topo.reader_ip, PORT)] * 7), pacer, count)
        stamps, got = receive(rx, count)
    assert len(got) == count
    stats = check_rate(stamps, pacer, schedule)
    assert stats["cv"] > 0.5, "exponential gaps vary as much as they are long (cv 1; even ones: 0)"


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_ctrl_c_mid_stream_reports_what_was_sent(implementation):
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with Sandbox("lo") as topo, reader(topo) as rx:
            with topo.enter("writer"):
                tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with tx:
                pacer = Pacer(ConstantSchedule(1000), implementation=implementation)
                sender = frames_on(tx, payloads(), [(topo.reader_ip, PORT)] * 7)
                signal.setitimer(signal.ITIMER_REAL, 0.15)
                start = time.monotonic()
                with pytest.raises(KeyboardInterrupt):
                    engine.paced(sender, pacer, 10_000)
                assert time.monotonic() - start < 5, "Ctrl-C must stop a 10 s stream early"
            stamps, _ = receive(rx, 10_000)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    sent = sender.engine.sent
    assert 0 < sent < 10_000
    assert len(stamps) == sent, "what the engine says it sent is what arrived"
    assert pacer.report().departures == sent


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_failing_send_raises_with_the_count_sent(implementation):
    with Sandbox("lo") as topo:
        with topo.enter("writer"):
            tx = open_packet_socket(topo.writer_if)
        with tx:
            sender = frames_on(tx, [bytes(70_000)])
            with pytest.raises(OSError) as caught:
                engine.paced(sender, Pacer(ConstantSchedule(1000), implementation=implementation), 3)
    assert caught.value.errno == errno.EMSGSIZE
    assert sender.engine.sent == 0


@pytest.mark.parametrize("way", ["engine", "engine-full", "engine-burst", "py-loop"])
def test_the_pacing_benchmark_runs_every_way_of_the_batch_writers(way: str) -> None:
    from rawpacer.bench.peers import peer_bench

    with peer_bench(200) as bench:
        stamps, extra = bench.run(f"xdp/{way}", 10_000, 40)
    report = extra["pacer"]
    assert len(stamps) == 40 and np.all(np.diff(stamps) >= 0)
    assert report.spin == ("full" if way in ("engine-full", "engine-burst") else "adaptive")
    assert report.catch_up == (math.inf if way == "engine-burst" else 1.25), "sockperf's way catches up in bursts"
    assert report.implementation == ("c-loop" if way.startswith("engine") else IMPLEMENTATION)
