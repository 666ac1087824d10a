"""How precisely rawpacer's pacer spaces datagrams, next to sockperf, iperf3 and trafgen, by kernel RX timestamps.

Run (root): .venv/bin/python benchmarks/pacing_bench.py [--rates 1000,10000,100000] [--count 20000]
            [--rounds 3] [--size 1500] [--tools udp-sendto/c-loop,sockperf,...] [--save runs.npz]

The harness is ``rawpacer.bench.peers`` (notebook 04 uses it too). One lo sandbox. Every tool sends datagrams with ``--size`` bytes of payload to one UDP reader
socket that asks the kernel for each datagram's receive time (SO_TIMESTAMPNS) and a buffer large
enough to hold a whole run unread; the reader drains it after each run. On lo the kernel stamps a
datagram as the sender hands it over, so the stamps show departures. Tools, each at every rate,
in an order that rotates each round:

- rawpacer's pacer driving a plain UDP socket (``udp-sendto``) and an AF_PACKET socket sending
  FrameTemplate frames (``packet-raw``), three ways each: ``py-spin`` (the Python loop on the
  pure-Python pacer, spinning in Python), ``c-wait`` (the Python loop on the C pacer: one C call
  per departure, waits with the GIL released) and ``c-loop`` (the whole departure loop, sends
  included, in C: the transmit engine paced by the C core), each waiting the default way (sleep, then spin for the adaptive
  margin) and catching up at most 1.25x; and the C loop three other ways: ``c-full`` (``--spin
  full``: spin only, no PAUSE), ``c-burst`` (spin only and ``--catch-up burst``: what is due after a
  stall leaves back to back; sockperf's two rules) and ``c-fixed`` (a fixed 5 ms margin: the pacer's
  wait before the margin adapted). Each socket sends two unmeasured datagrams first, the same way, as sockperf
  warms up before its test;
- the batch writers (``udp-sendmmsg``, ``packet-ring``, ``xdp``) at burst 1 through the transmit
  engine paced by the C core (``/engine``), spinning only (``/engine-full``, named), with
  sockperf's two rules (``/engine-burst``, named), or a Python loop around the C pacer's wait
  (``/py-loop``, named);
- ``sockperf throughput --mps`` (C, spins on the TSC to absolute deadlines);
- ``iperf3 -u -b`` (UDP at the equivalent payload bit rate; its server must receive the datagrams
  itself, so they are stamped by an AF_PACKET socket on lo instead, which gets the very same
  receive timestamp: the kernel stamps the packet once, before any socket sees it);
- ``trafgen --rate`` and ``trafgen --gap`` (netsniff-ng; one CPU, the same frame).

A tool that is not installed is left out. The figures are medians over the rounds: achieved rate
((n - 1) / (t_last - t_first)), its error against the target, and the deviation of the gaps from
the ideal gap, |gap - 1/rate|, at p50/p99/p99.9/max. Load on the machine shows in every column.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from rawpacer.bench.peers import PACER_TOOLS, PEERS, available, peer_bench
from rawpacer.host import describe
from rawpacer.pacing import stream_stats


def line(tool: str, rate: int, s: dict[str, Any]) -> str:
    dev = s["gap_dev_ns"]
    if s["rate_achieved_pps"] is None:
        return f"{tool:<22} {rate:>7} pps  {s['datagrams']} datagrams: too few to measure"
    cpu = ""
    if "pacer" in s:
        span = s["datagrams"] / rate * 1e9
        late = s["lateness_ns"]["p99"] / 1e3
        cpu = f"  pacer cpu {s['pacer_cpu_ns'] / span:5.0%} stalls {s['pacer']['stalls']} schedule lateness p99 {late:.1f} us"
    return (
        f"{tool:<22} {rate:>7} pps  n {s['datagrams']:>6}  achieved {s['rate_achieved_pps']:>11,.1f} "
        f"({s['rate_error']:+8.4%})  gap dev p50 {dev['p50'] / 1e3:7.2f} p99 {dev['p99'] / 1e3:8.2f} "
        f"p99.9 {dev['p999'] / 1e3:8.2f} max {dev['max'] / 1e3:9.1f} us  stalls {s['stalls']}{cpu}"
    )


def median_of(runs: list[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> float:
    return statistics.median(get(r) for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,10000,100000", help="packets/s, comma-separated")
    parser.add_argument("--count", type=int, default=20_000, help="datagrams per run (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--size", type=int, default=1500, help="UDP payload bytes (default 1500)")
    parser.add_argument("--tools", default=",".join(PACER_TOOLS + PEERS), help="tools to run, comma-separated")
    parser.add_argument("--save", metavar="FILE.npz", help="keep every run's receive timestamps (for gap histograms)")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",")]
    tools = available(args.tools.split(","))
    missing = sorted(set(args.tools.split(",")) - set(tools))
    if missing:
        print(f"left out (not installed or unknown): {', '.join(missing)}", file=sys.stderr)
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    saved: dict[str, np.ndarray] = {}
    with peer_bench(args.size) as b:
        for round_no in range(args.rounds):
            shift = round_no % len(tools)
            order = tools[shift:] + tools[:shift]
            for rate in rates:
                for tool in order:
                    stamps, extra = b.run(tool, rate, args.count)
                    summary = stream_stats(stamps, rate_pps=rate, pacer=extra.get("pacer"))
                    results.setdefault((tool, rate), []).append(summary)
                    saved[f"{tool}|{rate}|{round_no + 1}"] = stamps
                    print(f"round {round_no + 1}  {line(tool, rate, summary)}", flush=True)
    if args.save:
        np.savez_compressed(args.save, **saved)
    machine = describe()
    print(
        f"\nmachine: {machine['cpu']}, {machine['cores']} cores, kernel {machine['kernel']}, Python {machine['python']}"
    )
    with open("/proc/loadavg") as handle:
        print(f"load average now: {' '.join(handle.read().split()[:3])}")
    print(f"medians of {args.rounds} rounds, {args.count}+ datagrams of {args.size} bytes each, lo:")
    print("| tool | rate | achieved pps | error | gap dev p50 µs | p99 µs | p99.9 µs | max µs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for rate in rates:
        for tool in tools:
            runs = [r for r in results.get((tool, rate), []) if r["rate_achieved_pps"] is not None]
            if not runs:
                continue
            med = {
                key: median_of(runs, lambda r, key=key: r["gap_dev_ns"][key]) / 1e3
                for key in ("p50", "p99", "p999", "max")
            }
            achieved = median_of(runs, lambda r: r["rate_achieved_pps"])
            error = median_of(runs, lambda r: r["rate_error"])
            print(
                f"| {tool} | {rate:,} | {achieved:,.1f} | {error:+.4%} | {med['p50']:.2f} | {med['p99']:.2f} | "
                f"{med['p999']:.2f} | {med['max']:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
