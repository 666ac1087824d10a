"""Where the seed's op goes: message generation, send, kernel delivery, reader wake-up, receive and
check, verdict back to the writer, beside the kernel's own floor (one bare sendmmsg of the op's
datagrams to sockets nobody waits on), all measured in one run, medians over alternating rounds.

Run as root from the checkout: ``sudo .venv/bin/python benchmarks/op_breakdown.py [--ops 2000]``.
Prints a markdown table (microseconds) for udp-sendmmsg and packet-ring, 100 readers, 1500-byte
crypto messages: the seed's job.

Clocks: the parent's ``time.monotonic_ns()`` and the reader's ``reader_first_ns``/``reader_last_ns``
are the same CLOCK_MONOTONIC; the kernel's RX timestamps are CLOCK_REALTIME, moved onto the
monotonic clock by the offset sampled beside each op. In each round, a block of ops takes kernel
timestamps (needed for the delivery and wake-up rows) and a block does not, so neither the memfd
carrying the timestamps nor switching them on shows in the other rows.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from collections import defaultdict

from rawpacer.messages import MessageSource
from rawpacer.readers import ReaderSet, ReaderTuning
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.writers import Writer, WriterOptions, get

READERS = 100
SIZE = 1500
WRITERS = ("udp-sendmmsg", "packet-ring")
FLOOR_FIRST_PORT = 20001
ROWS = (
    ("generate", "message generation (fill 100 x 1500 B)"),
    ("arm", "arm the readers (begin)"),
    ("send", "send (the writer's call; on lo the kernel delivers inside it)"),
    ("first_queued", "first datagram queued, from send start (kernel RX stamp)"),
    ("last_queued", "last datagram queued, from send start (kernel RX stamp)"),
    ("wakeup", "reader wake-up: first queued -> reader takes it"),
    ("check", "receive and check: reader's first take -> last checked"),
    ("busy", "reader busy CPU (receive + check)"),
    ("after_send", "reader done after send returned (negative: before)"),
    ("verdict", "verdict back: max(send end, last checked) -> wait() returns"),
    ("op", "whole op (fill -> verdict)"),
    ("floor", "kernel floor: one bare sendmmsg of 100 x 1500 B"),
)


def realtime_offset() -> int:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, now (ns)."""
    before = time.monotonic_ns()
    real = time.time_ns()
    return real - (before + time.monotonic_ns()) // 2


def one_op(rs: ReaderSet, writer: Writer, source: MessageSource, stamped: bool) -> dict[str, float]:
    """One fan-out op, its segments in ns."""
    t0 = time.monotonic_ns()
    source.fill(rs.buffer)
    t1 = time.monotonic_ns()
    rs.begin(writer.delivered_size, timestamps=stamped)
    t2 = time.monotonic_ns()
    sent = writer.send(rs.messages)
    t3 = time.monotonic_ns()
    result = rs.wait(sent, strict=True)
    t4 = time.monotonic_ns()
    out = {
        "generate": t1 - t0,
        "arm": t2 - t1,
        "send": t3 - t2,
        "check": result.reader_last_ns - result.reader_first_ns,
        "busy": result.reader_busy_s * 1e9,
        "after_send": result.reader_last_ns - t3,
        "verdict": t4 - max(t3, result.reader_last_ns),
        "op": t4 - t0,
    }
    if stamped and result.arrivals is not None:
        offset = realtime_offset()
        first, last = int(result.arrivals.rx_ns.min()) - offset, int(result.arrivals.rx_ns.max()) - offset
        out = {"first_queued": first - t2, "last_queued": last - t2, "wakeup": result.reader_first_ns - first}
    return out


def floor_sockets(topo: Topology) -> list[socket.socket]:
    """READERS plain UDP sockets in the readers' namespace that nobody reads while the floor is timed."""
    socks = []
    with topo.enter("reader"):
        for i in range(READERS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((topo.reader_ip, FLOOR_FIRST_PORT + i))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.setblocking(False)
            socks.append(sock)
    return socks


def drain(socks: list[socket.socket]) -> None:
    """Empty the floor sockets (untimed)."""
    for sock in socks:
        while True:
            try:
                sock.recv(SIZE + 1)
            except BlockingIOError:
                break


def main() -> None:
    """Alternate the writers' ops and the floor; print the medians as a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="ops per writer (half of them with timestamps)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds the ops are split into")
    parser.add_argument("--idle-spin-us", type=int, default=None, help="ReaderTuning.idle_spin_us (default: its own)")
    args = parser.parse_args()
    samples: dict[str, dict[str, list[float]]] = {w: defaultdict(list) for w in WRITERS}
    floor: list[float] = []
    source = MessageSource.make("crypto", SIZE)
    tuning = ReaderTuning() if args.idle_spin_us is None else ReaderTuning(idle_spin_us=args.idle_spin_us)
    with Sandbox("lo") as topo, ReaderSet(topo, READERS, SIZE, tuning=tuning) as rs:
        plain = floor_sockets(topo)
        with topo.enter("writer"):
            writers = {name: get(name)(topo.target(rs.ports), WriterOptions(message_size=SIZE)) for name in WRITERS}
            bare = get("udp-sendmmsg")(
                topo.target(range(FLOOR_FIRST_PORT, FLOOR_FIRST_PORT + READERS)), WriterOptions(message_size=SIZE)
            )
        try:
            per_round = max(2, args.ops // args.rounds)
            for _ in range(args.rounds):
                for name, writer in writers.items():
                    for i in range(per_round):
                        for key, value in one_op(rs, writer, source, stamped=i >= per_round // 2).items():
                            samples[name][key].append(value)
                for _ in range(per_round // 2):
                    source.fill(rs.buffer)
                    t0 = time.monotonic_ns()
                    bare.send(rs.messages)
                    floor.append(time.monotonic_ns() - t0)
                    drain(plain)
        finally:
            for writer in (*writers.values(), bare):
                writer.close()
            for sock in plain:
                sock.close()
    floor_us = statistics.median(floor) / 1e3
    print(f"| segment (median, µs) | {' | '.join(WRITERS)} |")
    print(f"| --- | {' | '.join('---:' for _ in WRITERS)} |")
    for key, label in ROWS:
        cells = [
            f"{floor_us:.0f}" if key == "floor" else f"{statistics.median(samples[w][key]) / 1e3:.0f}" for w in WRITERS
        ]
        print(f"| {label} | {' | '.join(cells)} |")
    ratios = [statistics.median(samples[w]["op"]) / 1e3 / floor_us for w in WRITERS]
    print(f"| op / floor | {' | '.join(f'{r:.2f}x' for r in ratios)} |")


if __name__ == "__main__":
    main()
