"""The pacer's clock: CLOCK_MONOTONIC in ns, and its two waits, a sleep and a spin, to a deadline.

The waits come from the ``rawpacer._pace`` C extension when it is built (the GIL released while
they sleep or spin; a signal still interrupts a sleep), else from the pure-Python twins below;
``IMPLEMENTATION`` says which. Tests inject a fake clock with the same three methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

WaitUntil = Callable[[int, int], tuple[int, int]]
Until = Callable[[int], int]

DEFAULT_SPIN_NS = 5_000_000
"""The longest the pacer spins before a deadline (5 ms): the ceiling of the adaptive margin.

Waking from a sleep is late by tens of µs at the median on this project's machines (KVM guests
that halt idle vCPUs) and by up to 5 ms at the tail (``wakeup_lateness``); spinning costs CPU but
is never late by more than a clock read. ``Pacer(spin_ns=...)`` fixes the margin instead.
"""

SPIN_MIN_NS = 100_000
"""The shortest adaptive margin, and the margin before the first sleep (100 µs: the thread's 50 µs
timer slack, which every sleep may add, with room to spare)."""

OVERSHOOT_WINDOW = 256
"""Wake-up overshoots the adaptive margin keeps: it is 3/2 of the highest of the last 256 (a
running p99.6 with headroom)."""


class Clock(Protocol):
    """What the pacer needs of a clock: the time, a sleep and a spin to a deadline (all in ns)."""

    def now(self) -> int:
        """The current time in ns."""
        ...

    def sleep_until(self, deadline_ns: int) -> int:
        """Sleep until ``deadline_ns`` (a wake-up may be late, a signal may end it early); the time after."""
        ...

    def spin_until(self, deadline_ns: int) -> int:
        """Return at or after ``deadline_ns`` without sleeping; the time it returned at."""
        ...


def python_wait_until(deadline_ns: int, spin_ns: int) -> tuple[int, int]:
    """``wait_until`` in pure Python: ``time.sleep`` to ``spin_ns`` before the deadline, then spin."""
    entry = time.monotonic_ns()
    now = python_sleep_until(deadline_ns - spin_ns) if deadline_ns - entry > spin_ns else entry
    return python_spin_until(deadline_ns), now - entry


def python_sleep_until(deadline_ns: int) -> int:
    """``sleep_until`` in pure Python (``time.sleep``)."""
    now = time.monotonic_ns()
    if deadline_ns > now:
        time.sleep((deadline_ns - now) / 1e9)
        now = time.monotonic_ns()
    return now


def python_spin_until(deadline_ns: int) -> int:
    """``spin_until`` in pure Python: read the clock until the deadline has passed."""
    clock = time.monotonic_ns
    now = clock()
    while now < deadline_ns:
        now = clock()
    return now


def _pick() -> tuple[WaitUntil, Literal["c", "python"]]:
    try:
        from rawpacer._pace import wait_until as c_wait_until
    except ImportError:
        return python_wait_until, "python"
    return c_wait_until, "c"


wait_until, IMPLEMENTATION = _pick()


class MonotonicClock:
    """The real clock: ``time.monotonic_ns`` (CLOCK_MONOTONIC) and the C or Python waits."""

    def __init__(self, implementation: Literal["c", "python"] | None = None) -> None:
        self.implementation = implementation or IMPLEMENTATION
        self.wait_until: WaitUntil
        self.sleep_until: Until
        self.spin_until: Until
        if self.implementation == "python":
            self.wait_until, self.sleep_until, self.spin_until = (
                python_wait_until,
                python_sleep_until,
                python_spin_until,
            )
        else:
            from rawpacer import _pace

            self.wait_until, self.sleep_until, self.spin_until = _pace.wait_until, _pace.sleep_until, _pace.spin_until
        self.now: Callable[[], int] = time.monotonic_ns


def wakeup_lateness(samples: int = 200, sleep_ns: int = 1_000_000) -> npt.NDArray[np.int64]:
    """How late a sleep of ``sleep_ns`` wakes here, ``samples`` times (ns): what the margin must cover."""
    late = np.empty(samples, dtype=np.int64)
    for k in range(samples):
        deadline = time.monotonic_ns() + sleep_ns
        late[k] = wait_until(deadline, 0)[0] - deadline
    return late
