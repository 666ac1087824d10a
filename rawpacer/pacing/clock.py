"""The pacer's clock: CLOCK_MONOTONIC in ns, and a wait that sleeps, then spins, to a deadline.

``wait_until`` comes from the ``rawpacer._pace`` C extension when it is built (the GIL released
while it sleeps and spins; a signal still interrupts the sleep), else from the pure-Python twin
below; ``IMPLEMENTATION`` says which. Tests inject a fake clock with the same two methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

WaitUntil = Callable[[int, int], tuple[int, int]]

DEFAULT_SPIN_NS = 5_000_000
"""How long before a deadline the pacer stops sleeping and spins (5 ms).

Waking from a sleep is late by tens of µs at the median on this project's machines (KVM guests
that halt idle vCPUs) and by up to 5 ms at the tail (``wakeup_lateness``); spinning costs CPU but
is never late by more than a clock read. On bare metal 100 µs is plenty: pass ``spin_ns``.
"""


class Clock(Protocol):
    """What the pacer needs of a clock: the time, and a wait to a deadline (both in ns)."""

    def now(self) -> int:
        """The current time in ns."""
        ...

    def wait_until(self, deadline_ns: int, spin_ns: int) -> tuple[int, int]:
        """Return at or after ``deadline_ns``: (the time it returned at, the ns it spent asleep)."""
        ...


def python_wait_until(deadline_ns: int, spin_ns: int) -> tuple[int, int]:
    """``wait_until`` in pure Python: ``time.sleep`` to ``spin_ns`` before the deadline, then spin."""
    clock = time.monotonic_ns
    entry = now = clock()
    slept = 0
    if deadline_ns - now > spin_ns:
        time.sleep((deadline_ns - spin_ns - now) / 1e9)
        now = clock()
        slept = now - entry
    while now < deadline_ns:
        now = clock()
    return now, slept


def _pick() -> tuple[WaitUntil, Literal["c", "python"]]:
    try:
        from rawpacer._pace import wait_until as c_wait_until
    except ImportError:
        return python_wait_until, "python"
    return c_wait_until, "c"


wait_until, IMPLEMENTATION = _pick()


class MonotonicClock:
    """The real clock: ``time.monotonic_ns`` (CLOCK_MONOTONIC) and the C or Python ``wait_until``."""

    def __init__(self, implementation: Literal["c", "python"] | None = None) -> None:
        self.implementation = implementation or IMPLEMENTATION
        if self.implementation == "python":
            self.wait_until: WaitUntil = python_wait_until
        else:
            from rawpacer._pace import wait_until as c_wait_until

            self.wait_until = c_wait_until
        self.now: Callable[[], int] = time.monotonic_ns


def wakeup_lateness(samples: int = 200, sleep_ns: int = 1_000_000) -> npt.NDArray[np.int64]:
    """How late a sleep of ``sleep_ns`` wakes here, ``samples`` times (ns): what ``spin_ns`` must cover."""
    late = np.empty(samples, dtype=np.int64)
    for k in range(samples):
        deadline = time.monotonic_ns() + sleep_ns
        late[k] = wait_until(deadline, 0)[0] - deadline
    return late
