"""What --sizes and --vary cost the sender: the writer's transmit engine cycling an unshaped pool (one frame per
reader) and shaped ones, in datagrams per CPU-second of the sending thread (issue 21's target: under 10 %).

Run (root): .venv/bin/python benchmarks/shapes_bench.py [--writer packet-raw] [--datagrams 200000] [--rounds 5]
One sandbox (veth, 100 readers that are never armed: the sender alone is timed); the shapes take turns,
round after round, and each figure is the median over the rounds. The sending thread's CPU time
(``time.thread_time``) is the measure, since other processes on a shared host stretch wall time.
Frames per second are not bits per second: an IMIX pool's frames are smaller (its mean is 362 bytes).
"""

from __future__ import annotations

import argparse
import statistics
import time

from rawpacer.bench import rig
from rawpacer.bench.config import make_config
from rawpacer.bench.oploop import ASAP, send_pool
from rawpacer.bench.session import shaped
from rawpacer.bench.shaping import ShapeSpec, shape_writer
from rawpacer.writers import base as registry
from rawpacer.writers.base import WriterOptions

RAW = [("unshaped", None, None), ("imix", "imix", None), ("sport inc", None, "sport=1000-2000"),
       ("sport random", None, "sport=1-65535:random"), ("src-ip random", None, "src-ip=198.18.0.1-198.18.0.254:random")]  # fmt: skip
KERNEL = [("unshaped", None, None), ("imix", "imix", None), ("dport inc", None, "dport=5001-5100"),
          ("dport random", None, "dport=5001-5100:random")]  # fmt: skip
SHAPES = {
    "packet-raw": RAW,
    "packet-ring": RAW,
    "xdp": RAW,
    "ip-raw": RAW,
    "udp-sendto": KERNEL,
    "udp-sendmmsg": KERNEL,
}


def main() -> None:
    """Time each shape's pool through the writer's engine, unpaced, alternately, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writer", default="packet-raw", choices=sorted(SHAPES))
    parser.add_argument("--datagrams", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    base = make_config(writers=args.writer, readers=100, topology="veth", mode="stream", size=1472)
    with rig.sandbox(base) as topo, rig.readers(base, topo, 100) as readers:
        writer = rig.open_writer(
            base, topo, readers, registry.get(args.writer), WriterOptions(1472, allow_iface=topo.allow_iface)
        )
        with writer:
            source = rig.source(base, readers)
            senders = {}
            for label, sizes, vary in SHAPES[args.writer]:
                config = make_config(
                    writers=args.writer, readers=100, topology="veth", mode="stream", size=1472, sizes=sizes, vary=vary
                )
                shape = shaped(config, writer, readers, source) or shape_writer(ShapeSpec(), writer, readers.messages)
                senders[label] = (shape, len(shape.pool))
            cpu: dict[str, list[float]] = {label: [] for label in senders}
            for _ in range(args.rounds):
                for label, (shape, _) in senders.items():
                    began = time.thread_time()
                    send_pool(shape, ASAP, args.datagrams)
                    cpu[label].append(args.datagrams / (time.thread_time() - began))
    first = statistics.median(next(iter(cpu.values())))
    print(f"{args.writer}, veth, 100 readers, {args.datagrams:,} datagrams x {args.rounds} rounds, median:")
    for label, rates in cpu.items():
        rate = statistics.median(rates)
        pool = senders[label][1]
        print(f"  {label:13} pool {pool:6,} frames  {rate / 1e3:8.1f} k datagrams per CPU-s  {rate / first - 1:+.1%}")


if __name__ == "__main__":
    main()
