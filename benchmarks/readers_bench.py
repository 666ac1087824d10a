"""Reader capacity at saturation: datagrams per second the readers receive and check (``reader_capacity_pps``).

Run as root from the checkout (``sudo .venv/bin/python benchmarks/readers_bench.py``); everything runs
in a fresh ``lo`` sandbox. For each message size and reader count, rounds alternate between the
variants (receive loop, spinning, batch size, lingering, one or two reader processes); each
figure is the median over the rounds.

- **drain**: the reader process is stopped (SIGSTOP) while the writer queues a stream into deep
  receive buffers, then resumed: every ``recvmmsg`` finds a full batch, so datagrams checked per
  busy CPU second is the loop's own ceiling.
- **stream**: the writer streams unpaced, as ``compare --mode stream`` does, while the readers
  run: the writer's rate, the readers' capacity over the same stream (checked per busy second),
  and their ratio. Issue 16's target: capacity >= 1.25x the fastest writer's stream rate, and
  >= 1,000,000/s at 18 bytes with 100 readers.

Busy time is the reader's CPU time inside the receive-and-check passes (idle polls excluded),
so other load on the machine inflates neither figure; the writer's rate is wall-clock.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from rawpacer.messages import MessageSource
from rawpacer.readers import OpResult, ReaderSet, ReaderTuning
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.writers import WriterOptions, get

VARIANTS = {
    "c": {},
    "c-block": {"spin": False},
    "c-batch8": {"batch": 8},
    "c-batch256": {"batch": 256},
    "c-linger20": {"linger_us": 20},
    "c-linger100": {"linger_us": 100},
    "c-2proc": {},
    "python": {"loop": "python"},
}
TRUESIZE_BOUND = 4096  # kernel bytes charged per queued datagram of <= 1500 bytes on lo, with room


@dataclass
class Figures:
    """One stream's measurements."""

    writer_pps: float
    capacity_pps: float
    lost: int
    drops: int


@contextmanager
def rig(topo: Topology, variant: str, readers: int, size: int, rcvbuf: int | None) -> Iterator[list[ReaderSet]]:
    """The variant's reader set(s): one process, or two sharing the ports half and half."""
    tuning = ReaderTuning(**VARIANTS[variant])
    halves = [readers // 2, readers - readers // 2] if variant.endswith("2proc") else [readers]
    with ExitStack() as stack:
        sets, port = [], 5001
        for count in halves:
            rs = stack.enter_context(ReaderSet(topo, count, size, first_port=port, rcvbuf=rcvbuf, tuning=tuning))
            sets.append(rs)
            port = rs.ports[-1] + 1
        yield sets


def stream(topo: Topology, sets: list[ReaderSet], writer_name: str, size: int, datagrams: int, stop: bool) -> Figures:
    """One unpaced stream of about ``datagrams`` into ``sets``; the readers stopped meanwhile when ``stop``."""
    ports = [p for rs in sets for p in rs.ports]
    messages = [m for rs in sets for m in rs.messages]
    fanouts = max(1, datagrams // len(ports))
    with topo.enter("writer"):
        writer = get(writer_name)(topo.target(ports), WriterOptions(message_size=size))
    with writer:
        for rs in sets:
            MessageSource.make("crypto", size).fill(rs.buffer)
            rs.begin_stream(writer.delivered_size)
        if stop:
            for rs in sets:
                os.kill(rs.pid, signal.SIGSTOP)
        try:
            start = time.perf_counter()
            sent = writer.send(messages)
            for _ in range(fanouts - 1):
                sent += writer.resend(messages)
            elapsed = time.perf_counter() - start
        finally:
            if stop:
                for rs in sets:
                    os.kill(rs.pid, signal.SIGCONT)
        results: list[OpResult] = [rs.end_stream(fanouts, settle=0.3) for rs in sets]
    return Figures(
        writer_pps=sent / elapsed,
        capacity_pps=sum(r.reader_capacity_pps or 0.0 for r in results),
        lost=sum(r.counts.lost for r in results),
        drops=sum(r.counts.socket_drops for r in results),
    )


def main() -> None:
    """Parse the options, run every case, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="18,1500", help="message sizes in bytes (comma-separated)")
    parser.add_argument("--readers", default="100,10000", help="reader counts (comma-separated)")
    parser.add_argument("--writers", default="udp-sendmmsg,packet-ring", help="writers for the stream figures")
    parser.add_argument("--variants", default="c,python", help=f"of: {', '.join(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per case (median reported)")
    parser.add_argument("--datagrams", type=int, default=200_000, help="datagrams per stream")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(c) for c in args.readers.split(",")]
    writers = args.writers.split(",")
    variants = args.variants.split(",")
    print(
        f"{'size':>5} {'readers':>7} {'variant':<12} {'writer':<13} {'writer kpps':>11} {'capacity kpps':>13} "
        f"{'ratio':>6} {'drain kpps':>10} {'lost':>6} {'drops':>6}"
    )
    with Sandbox("lo") as topo:
        for size in sizes:
            for count in counts:
                per_socket = max(1, args.datagrams // count)
                deep = max(1 << 20, per_socket * TRUESIZE_BOUND)  # the whole drained stream fits
                rows: dict[tuple[str, str], list[Figures]] = {}
                drains: dict[str, list[Figures]] = {}
                for _ in range(args.rounds):
                    for variant in variants:
                        with rig(topo, variant, count, size, deep) as sets:
                            drains.setdefault(variant, []).append(
                                stream(topo, sets, writers[0], size, args.datagrams, stop=True)
                            )
                        with rig(topo, variant, count, size, None) as sets:
                            for name in writers:
                                figures = stream(topo, sets, name, size, args.datagrams, stop=False)
                                rows.setdefault((variant, name), []).append(figures)
                for (variant, name), runs in rows.items():
                    writer_pps = statistics.median(f.writer_pps for f in runs)
                    capacity = statistics.median(f.capacity_pps for f in runs)
                    drain = statistics.median(f.capacity_pps for f in drains[variant])
                    lost = sum(f.lost for f in runs) + sum(f.lost for f in drains[variant])
                    drops = sum(f.drops for f in runs) + sum(f.drops for f in drains[variant])
                    print(
                        f"{size:>5} {count:>7} {variant:<12} {name:<13} {writer_pps / 1e3:>11.0f} "
                        f"{capacity / 1e3:>13.0f} {capacity / writer_pps:>6.2f} {drain / 1e3:>10.0f} "
                        f"{lost:>6} {drops:>6}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
