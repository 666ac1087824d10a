"""Where a run's threads execute (``--cpu N``): the sending thread alone on CPU N, everything else
(the replay's planning and judging threads, the readers' processes) on the CPUs left.

On a small host the sender otherwise shares its CPU with the planner and the readers in turns the
scheduler picks, and each switch costs it the frames it would have sent meanwhile; trafgen pins its
senders for the same reason (``trafgen -P``/``--cpus``). The kernel work of a frame that a veth or lo
hands to the reader side still runs on the sender's CPU (the backlog of the CPU that called
``netif_rx``; Documentation/networking/scaling.rst), so pinning moves only user-space work away.

Affinity is per thread on Linux: ``sched_setaffinity(0, ...)`` sets the calling thread's mask only
(sched_setaffinity(2)), and a thread starts with its creator's mask.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rawpacer.errors import UsageError, require


@dataclass(frozen=True)
class Placement:
    """The sending thread's CPU and the CPUs for everything else (never empty, never holding it)."""

    sender: int
    others: frozenset[int]

    @contextmanager
    def sending(self) -> Iterator[None]:
        """The body runs on the sender's CPU alone; the calling thread's mask is restored after."""
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.sender})
        try:
            yield
        finally:
            os.sched_setaffinity(0, before)

    def elsewhere(self, pid: int = 0) -> None:
        """Move thread or process ``pid`` (0: the calling thread) onto the other CPUs, for good."""
        os.sched_setaffinity(pid, self.others)

    def as_dict(self) -> dict[str, object]:
        """For the JSON: the sender's CPU and the others, sorted."""
        return {"sender": self.sender, "others": sorted(self.others)}


def parse_cpu(value: int | str | None, allowed: set[int] | None = None) -> Placement | None:
    """``--cpu``: None (the scheduler places every thread) or a CPU this process may use, with at
    least one more left for the rest (``allowed``: the process's mask, read when not given)."""
    if value is None:
        return None
    mask = os.sched_getaffinity(0) if allowed is None else allowed
    cpus = ",".join(str(c) for c in sorted(mask))
    try:
        cpu = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--cpu {value!r} is not a CPU number; this process may use CPUs {cpus}") from None
    require(cpu in mask, f"--cpu {value} is not a CPU this process may use; use one of {cpus}")
    require(
        len(mask) > 1,
        f"--cpu {value} leaves no CPU for the readers and the planning; this process may use only CPU {cpus}",
    )
    return Placement(cpu, frozenset(mask - {cpu}))
