"""What else the host did while a pass or trial ran: CPU stolen by the hypervisor, CPU taken by other
processes, the load average, and the longest stall the loop itself saw; and whether that spoils it.

``sample(pids)`` is read before and after a pass; ``activity(before, after, longest_stall_ns)`` is the
difference. CPU time comes from /proc/stat's aggregate ``cpu`` line and, for rawpacer's own processes
(this one and ``pids``, e.g. the reader process), from /proc/PID/stat's utime and stime: all in
USER_HZ ticks (proc(5)). The parse functions take text, so they are pure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields

STEAL_PCT = 2.0
"""Steal above 2 % of all CPU time spoils a figure. Steal is time a vCPU wanted to run and the hypervisor
ran something else; it comes in pauses of 50 µs to 60 ms on these VMs, each landing on whichever op or
departure was under way. Run-to-run spread of ``compare`` here is a few %, and the differences it is read
for are 5 % and up: 2 % taken from under the loop can make a difference of that size on its own."""

OTHERS_PCT = 25.0
"""Other processes busy for more than 25 % of one CPU spoil a figure. rawpacer runs two busy processes
(writer and readers) on these 2-CPU machines; a process that wants a quarter of a CPU gets it in
slices of a ms or more (EEVDF's base slice, 0.75 ms x (1 + log2 CPUs): 1.5 ms here; kernel/sched/fair.c),
so about one op in four of a 1 ms fan-out meets it. An idle machine's daemons use under 5 %."""

STALL_NS = 10_000_000
"""A stall over 10 ms spoils a figure: more than two 4 ms scheduler ticks (250 Hz) without the CPU,
and ten times a 100-reader fan-out op, so it is the host's doing, not the path's. (The pacer re-anchors
its schedule at 20 ms, ``rawpacer.pacing.pacer.DEFAULT_STALL_NS``; this only judges.)"""

TICK_MARGIN = 1
"""/proc counts in 10 ms ticks (USER_HZ), each counter rounded on its own: a figure is judged less one
tick for the aggregate line and one for each process read, so a 100 ms pass on 2 CPUs (20 ticks in
all) is not spoiled by rounding alone."""

WARNING = "figures may be the host's, not the path's"


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat, in USER_HZ ticks summed over every CPU."""

    user: int = 0
    nice: int = 0
    system: int = 0
    idle: int = 0
    iowait: int = 0
    irq: int = 0
    softirq: int = 0
    steal: int = 0

    @property
    def processes(self) -> int:
        """Time processes ran, in user space or in the kernel for them (user includes guest time, proc(5))."""
        return self.user + self.nice + self.system

    @property
    def interrupts(self) -> int:
        """Time in hard and soft interrupts: much of it is a run's own packets on their way in."""
        return self.irq + self.softirq

    @property
    def busy(self) -> int:
        """Time this guest ran something."""
        return self.processes + self.interrupts

    @property
    def total(self) -> int:
        """All CPU time: busy, idle, waiting for I/O, and stolen by the hypervisor."""
        return self.busy + self.idle + self.iowait + self.steal

    def minus(self, earlier: CpuTimes) -> CpuTimes:
        """What each counter added since ``earlier``."""
        return CpuTimes(*(getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)))


def parse_stat(text: str) -> tuple[CpuTimes, int]:
    """/proc/stat's text: the aggregate cpu times, and how many CPUs it lists (``cpuN`` lines)."""
    lines = text.splitlines()
    aggregate = next((line.split()[1:] for line in lines if line.split()[:1] == ["cpu"]), None)
    if aggregate is None:
        raise ValueError("no aggregate cpu line in /proc/stat")
    values = [int(v) for v in aggregate[: len(fields(CpuTimes))]]
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return CpuTimes(*values), max(cpus, 1)


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """/proc/loadavg's 1, 5 and 15 minute load averages."""
    one, five, fifteen = (float(v) for v in text.split()[:3])
    return one, five, fifteen


def parse_pid_stat(text: str) -> int:
    """A /proc/PID/stat's utime + stime (fields 14 and 15, ticks, every thread of the process); split after
    the last ``)`` since the command name may hold spaces and parentheses."""
    rest = text.rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:  # a pid that exited, or no /proc
        return None


@dataclass(frozen=True)
class HostSample:
    """One reading of the host: cpu times, CPUs, load average, and rawpacer's processes' ticks by pid."""

    cpu: CpuTimes
    cpus: int
    load: tuple[float, float, float]
    own: Mapping[int, int]
    at_ns: int


def sample(pids: Iterable[int] = ()) -> HostSample:
    """Read the host now; ``pids`` are rawpacer's other processes (this one is always counted)."""
    stat = _read("/proc/stat")
    cpu, cpus = parse_stat(stat) if stat is not None else (CpuTimes(), os.cpu_count() or 1)
    load = _read("/proc/loadavg")
    own = {}
    for pid in dict.fromkeys([os.getpid(), *pids]):
        text = _read(f"/proc/{pid}/stat")
        if text is not None:
            own[pid] = parse_pid_stat(text)
    return HostSample(cpu, cpus, parse_loadavg(load) if load else (0.0, 0.0, 0.0), own, time.monotonic_ns())


@dataclass(frozen=True)
class HostActivity:
    """The host over one interval: steal (% of all CPU time, every CPU), other processes' and rawpacer's
    own processes' CPU time and interrupts (% of one CPU), the load average at its end, the longest
    stall the loop saw, and whether any of them passed its threshold (``why`` says which; interrupts
    are not judged: much of them is the run's own packets)."""

    interval_ns: int
    steal_pct: float | None
    others_pct: float | None
    own_pct: float | None
    interrupts_pct: float | None
    load_avg: tuple[float, float, float]
    longest_stall_ns: int | None
    spoiled: bool
    why: str

    @property
    def warning(self) -> str:
        """The one line a report prints for a spoiled interval."""
        return f"{WARNING}: {self.why}"

    def excess(self) -> float:
        """How far past its threshold the worst figure went (1.0: at it), to pick the worst interval."""
        ratios = [
            (self.steal_pct or 0.0) / STEAL_PCT,
            (self.others_pct or 0.0) / OTHERS_PCT,
            (self.longest_stall_ns or 0) / STALL_NS,
        ]
        return max(ratios)

    def to_dict(self) -> dict[str, object]:
        """The JSON form (docs/benchmark.md, docs/trusting-a-figure.md)."""
        out = asdict(self)
        out["load_avg"] = list(self.load_avg)
        return out


def activity(before: HostSample, after: HostSample, longest_stall_ns: int | None = None) -> HostActivity:
    """What the host did between two samples, judged against the thresholds above. Figures are None when
    no tick passed; a figure judged spoiled is past its threshold by more than its rounding."""
    delta = after.cpu.minus(before.cpu)
    own = sum(after.own[pid] - before.own[pid] for pid in before.own.keys() & after.own.keys())
    stall = None if longest_stall_ns is None else max(0, int(longest_stall_ns))
    steal = others = mine = interrupts = None
    why = []
    if delta.total > 0:
        one_cpu = delta.total / after.cpus
        steal, mine = delta.steal * 100 / delta.total, own * 100 / one_cpu
        others, interrupts = max(0, delta.processes - own) * 100 / one_cpu, delta.interrupts * 100 / one_cpu
        margin = TICK_MARGIN * (1 + len(before.own))  # the aggregate's rounding, then each process's
        if max(0, delta.steal - TICK_MARGIN) * 100 / delta.total > STEAL_PCT:
            why.append(f"steal {steal:.1f} %")
        if max(0, delta.processes - own - margin) * 100 / one_cpu > OTHERS_PCT:
            why.append(f"other processes {others:.0f} % of a CPU")
    if stall is not None and stall > STALL_NS:
        why.append(f"a stall of {stall / 1e6:.1f} ms")
    return HostActivity(
        interval_ns=after.at_ns - before.at_ns,
        steal_pct=steal,
        others_pct=others,
        own_pct=mine,
        interrupts_pct=interrupts,
        load_avg=after.load,
        longest_stall_ns=stall,
        spoiled=bool(why),
        why=", ".join(why),
    )


def worst(activities: Sequence[HostActivity]) -> HostActivity | None:
    """The spoiled interval whose worst figure went furthest past its threshold (None: none spoiled)."""
    spoiled = [a for a in activities if a.spoiled]
    return max(spoiled, key=HostActivity.excess) if spoiled else None
