"""Where a frame's time goes in ``xdp`` and ``packet-ring``, and which copy-mode kick strategy is faster.

Run (root): .venv/bin/python benchmarks/xdp_bench.py [phases|kick] [--fanouts 2000] [--rounds 3] [--readers 100]

``phases``: one lo sandbox, 100 kernel UDP readers, 1514-byte frames. Each writer sends fan-outs
back to back, fresh (``send``: every frame stamped) and replayed (``resend``), while the steps of
its send path are timed in place (a timer wraps each step on the writer object; a few calls per
fan-out, so the timers cost well under 1% of it):

- **stamp**: headers, checksums and payloads written into the UMEM rows / the staging rows;
- **descriptor**: handing frames over: xdp's chunk claims, TX ring writes, completion reaping and
  its XDP_STATISTICS look; packet-ring's copy into ring slots and status words;
- **kick**: the syscalls themselves (sendto / send), measured with nothing to send and
  multiplied by the kicks made;
- **kernel**: the rest of the kicks' time: skb, copy, driver, and lo's whole IPv4/UDP receive;
- **other**: the Python around them (the span check, dispatch, flush loop).

Each step's figure is its best (lowest) over the rounds: on a shared machine (hypervisor steal,
other processes) the best of many short rounds is what the code costs, the median what the
machine let it have.

``kick``: xdp with XDP_MAX_TX_SKB_BUDGET raised to the TX ring size (one sendto per fan-out)
against the kernel's 32 (sendto again after every EAGAIN), in stream mode and in fresh fan-outs,
to 100 and 1000 readers. Rounds alternate; figures are medians. The Python thread is pinned to one
CPU, like ``trafgen -P 1`` in trafgen_bench.py.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rawpacer.host import describe
from rawpacer.messages import MessageSource
from rawpacer.readers import OpResult, ReaderSet
from rawpacer.sandbox import Sandbox
from rawpacer.writers import base
from rawpacer.writers.packet_ring import PacketRingWriter
from rawpacer.writers.xdp import XdpKnobs, XdpWriter

FRAME = 1514
PAYLOAD = FRAME - 42
EMPTY_KICKS = 20000


@contextmanager
def pinned() -> Iterator[None]:
    """Run the body on one CPU (the lowest allowed), as trafgen -P 1 runs."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


class Timers:
    """Nanoseconds and calls per step, filled by wrappers around the writer's own methods."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, owner: Any, attr: str, step: str) -> None:
        """Replace ``owner.attr`` (a bound method) by a timed one on this instance only."""
        inner: Callable[..., Any] = getattr(owner, attr)
        ns, calls, clock = self.ns, self.calls, time.perf_counter_ns

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return inner(*args, **kwargs)
            finally:
                ns[step] += clock() - start
                calls[step] += 1

        setattr(owner, attr, timed)

    def reset(self) -> None:
        self.ns.clear()
        self.calls.clear()


def warm_up(writer: base.Writer, readers: ReaderSet) -> None:
    """One fan-out the readers wait for, untimed: what the first send builds (batches, layouts) is
    built, and the stream that follows starts with nothing in flight."""
    readers.begin(PAYLOAD)
    result = readers.wait(writer.send(readers.messages))
    assert result.ok, result.describe()


def empty_kick_ns(kick: Callable[[], object]) -> float:
    """Mean cost of one syscall that finds nothing to send."""
    start = time.perf_counter_ns()
    for _ in range(EMPTY_KICKS):
        kick()
    return (time.perf_counter_ns() - start) / EMPTY_KICKS


def instrument(writer: base.Writer, timers: Timers) -> tuple[str, float]:
    """Wrap the writer's steps; return the name of its kick step and one empty kick's cost."""
    if isinstance(writer, XdpWriter):
        xsk = writer.xsk
        cost = empty_kick_ns(xsk.kick)
        xsk.kicks = 0
        for attr in ("claim", "publish", "reap", "_check_invalid"):
            timers.wrap(xsk, attr, "descriptor")
        timers.wrap(xsk, "kick", "kick")
        timers.wrap(writer._batches[PAYLOAD], "compose", "stamp")
        return "kick", cost
    assert isinstance(writer, PacketRingWriter)
    sock = writer.sock
    cost = empty_kick_ns(lambda: sock.send(b"", socket.MSG_DONTWAIT))
    timers.wrap(writer, "_compose", "stamp")
    timers.wrap(writer, "_put", "descriptor")
    timers.wrap(writer.ring, "flush", "kick")
    return "kick", cost


def timed_stream(
    writer: base.Writer, readers: ReaderSet, messages: list[Any], call: str, fanouts: int
) -> tuple[int, OpResult]:
    """``fanouts`` back-to-back sends (or resends) of ``messages`` into a stream: ns taken, readers' result."""
    send = writer.send if call == "send" else writer.resend
    readers.begin_stream(PAYLOAD)
    start = time.perf_counter_ns()
    for _ in range(fanouts):
        send(messages)
    elapsed = time.perf_counter_ns() - start
    return elapsed, readers.end_stream(fanouts)


def measure(
    writer: base.Writer, timers: Timers, cost: float, readers: ReaderSet, call: str, fanouts: int
) -> dict[str, float]:
    """One timed run of ``fanouts`` sends (or resends): ns per frame of each step."""
    messages = list(readers.messages)
    frames = fanouts * len(messages)
    timers.reset()
    if isinstance(writer, XdpWriter):
        writer.xsk.kicks = 0
    total, result = timed_stream(writer, readers, messages, call, fanouts)
    assert result.counts.delivered == frames, result.describe()
    kicks = writer.xsk.kicks if isinstance(writer, XdpWriter) else timers.calls["kick"]
    steps = {"stamp": timers.ns["stamp"], "descriptor": timers.ns["descriptor"], "kick": kicks * cost}
    steps["kernel"] = timers.ns["kick"] - steps["kick"]
    steps["other"] = total - sum(steps.values())
    per_frame = {step: ns / frames for step, ns in steps.items()}
    return {**per_frame, "total": total / frames, "kicks per fan-out": kicks / fanouts}


def run_phases(args: argparse.Namespace) -> None:
    names = ("xdp", "packet-ring")
    runs: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with Sandbox("lo") as topo, ReaderSet(topo, args.readers, PAYLOAD) as readers, pinned():
        MessageSource.make("crypto", PAYLOAD).fill(readers.buffer)
        writers, timers, costs = {}, {}, {}
        for name in names:
            with topo.enter("writer"):
                writers[name] = base.get(name)(topo.target(readers.ports), base.WriterOptions(message_size=PAYLOAD))
            warm_up(writers[name], readers)
            timers[name] = Timers()
            costs[name] = instrument(writers[name], timers[name])[1]
        try:
            for round_no in range(args.rounds):
                for name in names if round_no % 2 == 0 else names[::-1]:
                    for call in ("send", "resend"):
                        steps = measure(writers[name], timers[name], costs[name], readers, call, args.fanouts)
                        for step, value in steps.items():
                            runs[name, call][step].append(value)
        finally:
            for writer in writers.values():
                writer.close()
    print(f"ns per frame, {FRAME}-byte frames to {args.readers} readers on lo, best of {args.rounds} rounds:")
    header = ["stamp", "descriptor", "kick", "kernel", "other", "total"]
    print(f"  {'writer / call':<22}" + "".join(f"{h:>12}" for h in header) + f"{'kicks/fan-out':>15}")
    for (name, call), steps in runs.items():
        row = "".join(f"{min(steps[h]):>12.0f}" for h in header)
        print(f"  {name + ' ' + call:<22}{row}{min(steps['kicks per fan-out']):>15.2f}")
    medians = {key: statistics.median(steps["total"]) for key, steps in runs.items()}
    print("  median totals: " + ", ".join(f"{n} {c} {v:.0f}" for (n, c), v in medians.items()))


def run_kick(args: argparse.Namespace) -> None:
    """Frames/s with the raised budget and with the kernel's 32, per readers count and call."""
    budgets = {"budget=ring": 0, "budget=32": 32}
    for count in (args.readers, 1000):
        rates: dict[tuple[str, str], list[float]] = defaultdict(list)
        kicks: dict[tuple[str, str], float] = {}
        lost: dict[tuple[str, str], int] = defaultdict(int)
        with Sandbox("lo") as topo, ReaderSet(topo, count, PAYLOAD) as readers:
            MessageSource.make("crypto", PAYLOAD).fill(readers.buffer)
            messages = list(readers.messages)
            fanouts = max(10, args.fanouts * args.readers // count)
            for round_no in range(args.rounds):
                order = list(budgets) if round_no % 2 == 0 else list(budgets)[::-1]
                for label in order:
                    with topo.enter("writer"):
                        writer = XdpWriter(
                            topo.target(readers.ports),
                            base.WriterOptions(message_size=PAYLOAD),
                            XdpKnobs(tx_budget=budgets[label]),
                        )
                    with writer, pinned():
                        for call in ("resend", "send"):
                            warm_up(writer, readers)
                            writer.xsk.kicks = 0
                            elapsed, result = timed_stream(writer, readers, messages, call, fanouts)
                            rates[label, call].append(fanouts * count / elapsed * 1e9)
                            lost[label, call] += fanouts * count - result.counts.delivered
                            kicks[label, call] = writer.xsk.kicks / fanouts
        print(f"xdp kick strategy, {FRAME}-byte frames to {count} readers on lo, median of {args.rounds} rounds:")
        for call in ("resend", "send"):
            line = "  " + f"{'stream (resend)' if call == 'resend' else 'fresh (send)':<16}"
            for label in budgets:
                line += (
                    f"  {label}: {statistics.median(rates[label, call]):>9,.0f} frames/s "
                    f"({kicks[label, call]:.1f} kicks, {lost[label, call]} lost)"
                )
            ratio = statistics.median(rates["budget=ring", call]) / statistics.median(rates["budget=32", call])
            print(line + f"   ring/32 = {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=("phases", "kick", "all"), default="all")
    parser.add_argument("--fanouts", type=int, default=2000, help="fan-outs per run (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--readers", type=int, default=100, help="readers / ports (default 100)")
    args = parser.parse_args(argv)
    machine = describe()
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, kernel {machine['kernel']}, Python {machine['python']}"
    )
    if args.what in ("phases", "all"):
        run_phases(args)
    if args.what in ("kick", "all"):
        run_kick(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
