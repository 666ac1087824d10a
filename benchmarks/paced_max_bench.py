"""Paced at its own maximum: each batch writer's unpaced stream rate, then a stream paced at that rate
with the writer's own batch (one fan-out) as the burst, side by side, medians of alternating rounds.

Run (root): .venv/bin/python benchmarks/paced_max_bench.py [--writers udp-sendmmsg,packet-ring,xdp]
            [--readers 100] [--benchtime 1s] [--rounds 3]

Issue 24's target: the paced stream reaches at least 0.95x of the unpaced one for every batch writer,
so pacing from the engine's C loop costs (almost) nothing at full speed. Both runs go through
``rawpacer.compare`` (``--mode stream``), in their own lo sandbox, one after the other in each round,
and each gives its stream's datagrams/s as compare's table does.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import rawpacer
from rawpacer.host import describe


def stream_rate(writer: str, readers: int, benchtime: str, rate: float | None = None) -> float | None:
    """One compare stream of ``writer`` (paced at ``rate`` with one fan-out a burst when given): datagrams/s."""
    paced = {} if rate is None else {"rate": f"{rate:.0f}", "burst": readers}
    report = rawpacer.compare(writers=writer, readers=readers, mode="stream", benchtime=benchtime, **paced)
    (row,) = report.results
    if row.error is not None:
        print(f"{writer}: {row.error}", file=sys.stderr)
        return None
    return row.median("packets_per_s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="udp-sendmmsg,packet-ring,xdp")
    parser.add_argument("--readers", type=int, default=100, help="reader ports: the fan-out, and the paced burst")
    parser.add_argument("--benchtime", default="1s")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(describe())
    ratios: dict[str, list[float]] = {}
    rates: dict[str, list[tuple[float, float]]] = {}
    for round_ in range(args.rounds):
        for writer in args.writers.split(","):
            unpaced = stream_rate(writer, args.readers, args.benchtime)
            paced = None if unpaced is None else stream_rate(writer, args.readers, args.benchtime, unpaced)
            if unpaced is None or paced is None:
                continue
            ratios.setdefault(writer, []).append(paced / unpaced)
            rates.setdefault(writer, []).append((unpaced, paced))
            print(f"round {round_ + 1} {writer}: unpaced {unpaced:,.0f}/s, paced {paced:,.0f}/s", flush=True)
    print()
    print("| writer | unpaced (median) | paced at it, burst = fan-out (median) | paced / unpaced per round | median |")
    print("|---|---:|---:|---|---:|")
    for writer, got in ratios.items():
        unpaced = statistics.median(u for u, _ in rates[writer])
        paced = statistics.median(p for _, p in rates[writer])
        rounds = ", ".join(f"{r:.3f}" for r in got)
        print(f"| {writer} | {unpaced:,.0f}/s | {paced:,.0f}/s | {rounds} | {statistics.median(got):.3f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
