"""The device-under-test targets and docs/dut.md's worked experiments, measured through rawpacer's public API.

Run (root): .venv/bin/python benchmarks/dut_bench.py EXPERIMENT [options]

- ``tbf``: ``rfc2544 --topology router --dut tbf:RATE`` (one writer, every RFC 2544 frame size, 2 s trials),
  ``--runs`` times: throughput against RATE as tbf counts it (L2, no FCS) per size, DUT- or writer-limited,
  the runs' agreement, the frame-loss curve against (offered - RATE) / offered, latency p99 against the
  tbf's queue, and the time each run took;
- ``police``: ``rfc2544 --dut police:RATE`` throughput (RFC 2544 throughput test only) against RATE pps;
- ``drop``: a paced stream through ``--dut drop:FRACTION``; the measured loss against the 99 % binomial
  interval of FRACTION for the datagrams sent;
- ``rules``: the writer's unpaced stream rate through ``--dut rules:N`` for each N (rule-scan cost);
- ``conntrack``: the unpaced stream rate through plain forwarding and through ``--dut conntrack``,
  alternating ``--rounds`` times;
- ``forwarding``: the unpaced stream rate over ``veth`` (no DUT) and ``router`` (plain forwarding),
  alternating: what the forwarding namespace costs on this machine.

Every loss in every run must be attributed to a DUT counter: the script prints any that is not.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Sequence

from rawpacer.bench import compare, rfc2544
from rawpacer.bench.result import Report, Sample
from rawpacer.bench.rfc2544_suite.result import l2_mbit

Z99 = 2.5758
"""The 99 % two-sided normal quantile: the binomial interval of ``drop`` (n p is in the hundreds)."""


def unattributed(notes: Sequence[str]) -> list[str]:
    """Notes that say part of a loss was not attributed to any counter."""
    return [note for note in notes if "not attributed" in note]


def tbf(args: argparse.Namespace) -> None:
    """RFC 2544 against a tbf DUT, ``--runs`` times; per size: throughput vs the shaper's rate."""
    rate_mbit = float(args.rate.lower().removesuffix("mbit"))
    by_run = []
    for run_number in range(args.runs):
        start = time.monotonic()
        run = rfc2544(
            writers=args.writer,
            topology="router",
            dut=[f"tbf:{args.rate}"],
            trial=args.trial,
            tests=args.tests,
        )
        took = time.monotonic() - start
        by_run.append({entry.frame_size: entry for entry in run.results})
        print(f"run {run_number + 1}: {took:.0f} s")
        print("size  throughput pps   L2 Mbit/s  vs rate  limited  latency p99 (ms)  loss curve |err| max (pp)")
        for size, entry in sorted(by_run[-1].items()):
            l2 = l2_mbit(entry.throughput_pps, size)
            error = "-" if l2 is None else f"{(l2 / rate_mbit - 1) * 100:+.2f} %"
            p99 = "-" if entry.latency_ns is None else f"{entry.latency_ns['p99'] / 1e6:.2f}"
            worst = 0.0
            for trial in entry.trials:
                if trial.test == "loss" and trial.achieved_pps:
                    offered = l2_mbit(trial.achieved_pps, size) or 0.0
                    expected = max(0.0, (offered - rate_mbit) / offered) if offered else 0.0
                    worst = max(worst, abs(trial.loss_fraction - expected) * 100)
            pps = "-" if entry.throughput_pps is None else f"{entry.throughput_pps:,.0f}"
            print(
                f"{size:5d} {pps:>15} {l2 or 0:10.1f}  {error:>8}  {entry.limited_by or '-':7}  {p99:>16}  {worst:.2f}"
            )
            for trial in entry.trials:
                for note in unattributed(trial.notes):
                    print(f"      unattributed loss, {trial.test} at {trial.rate}: {note}")
    if len(by_run) > 1:
        print("runs' agreement (max/min - 1 of the throughput per size):")
        for size in sorted(by_run[0]):
            figures = [r[size].throughput_pps for r in by_run if r.get(size) and r[size].throughput_pps]
            if len(figures) > 1:
                print(f"  {size:5d}: {(max(figures) / min(figures) - 1) * 100:.2f} %")


def police(args: argparse.Namespace) -> None:
    """RFC 2544 throughput against an nftables policer of ``--rate`` packets/s."""
    target = float(args.rate.lower().removesuffix("kpps")) * 1000
    run = rfc2544(
        writers=args.writer, topology="router", dut=[f"police:{args.rate}"], trial=args.trial, tests="throughput"
    )
    for entry in run.results:
        pps = entry.throughput_pps or 0.0
        print(
            f"{entry.frame_size:5d} B: throughput {pps:,.0f} pps ({(pps / target - 1) * 100:+.2f} % of "
            f"{target:,.0f}), limited by {entry.limited_by}"
        )


def _samples(report: Report) -> list[Sample]:
    return [sample for row in report.results for sample in row.samples]


def drop(args: argparse.Namespace) -> None:
    """A paced stream through random drops: loss against the 99 % binomial interval."""
    fraction = float(args.fraction)
    report = compare(
        writers=args.writer,
        topology="router",
        dut=[f"drop:{fraction}"],
        size=1400,  # one packet per datagram: a fragmented datagram is lost when either fragment is dropped
        mode="stream",
        rate=args.stream_rate,
        benchtime=f"{args.ops}x",
    )
    for sample in _samples(report):
        n, lost = sample.sent, sample.sent - sample.counts.delivered
        mean, spread = n * fraction, Z99 * math.sqrt(n * fraction * (1 - fraction))
        inside = mean - spread <= lost <= mean + spread
        dropped = (sample.dut or {}).get("dut.nft.rawpacer drop.packets", 0)
        print(
            f"sent {n:,}, lost {lost:,} ({lost / n * 100:.4f} %); 99 % interval of {fraction:g}: "
            f"{mean - spread:,.0f}-{mean + spread:,.0f}: {'inside' if inside else 'OUTSIDE'}; "
            f"the DUT's drop rule counted {dropped:,}"
        )
    for row in report.results:
        for note in unattributed(row.notes):
            print(f"unattributed: {note}")


def _stream_rate(dut: Sequence[str], topology: str, args: argparse.Namespace) -> float:
    """The writer's unpaced stream rate (datagrams sent per second) through ``dut``."""
    report = compare(writers=args.writer, topology=topology, dut=list(dut), mode="stream", benchtime=args.benchtime)
    rates = [s.sent * 1e9 / s.elapsed_ns for s in _samples(report) if s.elapsed_ns]
    return statistics.median(rates)


def alternate(setups: dict[str, tuple[str, list[str]]], args: argparse.Namespace) -> None:
    """Each setup's unpaced stream rate, ``--rounds`` alternating rounds; medians and ratios to the first."""
    rates: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.rounds):
        for name, (topology, dut) in setups.items():
            rates[name].append(_stream_rate(dut, topology, args))
    first = statistics.median(next(iter(rates.values())))
    for name, values in rates.items():
        median = statistics.median(values)
        shown = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:>14}: median {median:,.0f} datagrams/s ({median / first:.3f}x), rounds {shown}")


def rules(args: argparse.Namespace) -> None:
    """Rule-scan cost: the stream rate through N non-matching nftables rules."""
    counts = [int(n) for n in args.counts.split(",")]
    alternate({f"rules:{n}": ("router", [f"rules:{n}"]) for n in counts}, args)


def conntrack(args: argparse.Namespace) -> None:
    """Conntrack's cost: plain forwarding against stateful forwarding."""
    alternate({"plain": ("router", []), "conntrack": ("router", ["conntrack"])}, args)


def forwarding(args: argparse.Namespace) -> None:
    """The forwarding namespace's cost: veth (no DUT) against router (plain forwarding)."""
    alternate({"veth": ("veth", []), "router": ("router", [])}, args)


EXPERIMENTS = {
    "tbf": tbf,
    "police": police,
    "drop": drop,
    "rules": rules,
    "conntrack": conntrack,
    "forwarding": forwarding,
}


def main() -> None:
    """Parse the experiment and its options, print the machine, run it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=list(EXPERIMENTS))
    parser.add_argument("--writer", default="udp-sendmmsg")
    parser.add_argument("--rate", default=None, help="tbf: 200mbit; police: 50kpps")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--trial", default="2s")
    parser.add_argument("--tests", default="throughput,latency,loss")
    parser.add_argument("--fraction", default="0.001")
    parser.add_argument("--stream-rate", default="50k")
    parser.add_argument("--ops", type=int, default=3000, help="drop: fan-outs of 100 datagrams in the stream")
    parser.add_argument("--counts", default="0,100,1000,10000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--benchtime", default="1s")
    args = parser.parse_args()
    args.rate = args.rate or {"tbf": "200mbit", "police": "50kpps"}.get(args.experiment)
    print(f"{args.experiment}: {platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}, {args}")
    EXPERIMENTS[args.experiment](args)


if __name__ == "__main__":
    main()
