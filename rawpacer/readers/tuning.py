"""How the reader process receives: which loop, spinning or sleeping, batch size, lingering.

The defaults are what measured fastest here (docs/readers.md, bench/readers_bench.py); the knobs
exist so the benchmark can compare them and the agreement tests can force the Python loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rawpacer.errors import UsageError, require
from rawpacer.readers import fastloop

LOOPS = ("auto", "c", "python")
DEFAULT_BATCH = 64
MAX_BATCH = 1024  # recvmmsg's vlen is capped at UIO_MAXIOV
MAX_LINGER_US = 10_000
DEFAULT_IDLE_SPIN_US = 1000  # covers the gap between back-to-back fan-out ops (fill + begin)
MAX_IDLE_SPIN_US = 1_000_000
SLEEP, SPIN, POLL_OP = 0, 1, 2
"""The loops' spin modes (``spin_mode``; ``rawpacer._readloop`` has the same numbers)."""


@dataclass(frozen=True)
class ReaderTuning:
    """Receive-loop settings of one ReaderSet.

    ``loop``: ``"c"`` (``rawpacer._readloop``), ``"python"`` (``pyloop``), or ``"auto"`` (C when
    built). ``spin``: poll without sleeping while an op is open (None: when the process may run
    on two or more CPUs). ``batch``: datagrams per ``recvmmsg`` call. ``linger_us``: after a pass
    that received something, pause this long so more datagrams queue for the next batch.
    ``idle_spin_us``: when spinning, go on spinning this long after an op ends before sleeping
    (the reader, and the parent waiting for its verdict), so back-to-back ops pay no wake-ups.
    ``poll_op``: when not spinning, sleep until an op's first datagram and poll from there until
    the op is complete: nothing spins between ops (the CPU stays free for others, e.g. ssh), but
    the op itself is read at polling speed and the sender pays one wake-up, not one per batch.
    """

    loop: str = "auto"
    spin: bool | None = None
    batch: int = DEFAULT_BATCH
    linger_us: int = 0
    idle_spin_us: int = DEFAULT_IDLE_SPIN_US
    poll_op: bool = False

    def __post_init__(self) -> None:
        """Every knob checked where tuning is made."""
        require(self.loop in LOOPS, f"reader loop {self.loop!r} is not allowed; use one of: {', '.join(LOOPS)}")
        require(self.spin in (None, True, False), f"spin {self.spin!r} is not allowed; use None, True or False")
        require(
            isinstance(self.batch, int) and not isinstance(self.batch, bool) and 1 <= self.batch <= MAX_BATCH,
            f"batch {self.batch!r} is out of range 1-{MAX_BATCH}",
        )
        require(
            isinstance(self.linger_us, int) and 0 <= self.linger_us <= MAX_LINGER_US,
            f"linger_us {self.linger_us!r} is out of range 0-{MAX_LINGER_US}",
        )
        require(
            isinstance(self.idle_spin_us, int) and 0 <= self.idle_spin_us <= MAX_IDLE_SPIN_US,
            f"idle_spin_us {self.idle_spin_us!r} is out of range 0-{MAX_IDLE_SPIN_US}",
        )
        require(isinstance(self.poll_op, bool), f"poll_op {self.poll_op!r} is not allowed; use True or False")
        if self.loop == "c" and not fastloop.available():
            raise UsageError("reader loop 'c' is not allowed: rawpacer._readloop is not built; use auto or python")

    @property
    def resolved_loop(self) -> str:
        """The loop that will run: ``"c"`` or ``"python"``."""
        if self.loop == "auto":
            return "c" if fastloop.available() else "python"
        return self.loop

    @property
    def resolved_spin(self) -> bool:
        """Whether the loop spins while an op is open, on this process's CPUs."""
        return self.spin if self.spin is not None else len(os.sched_getaffinity(0)) >= 2

    @property
    def spin_mode(self) -> int:
        """The loops' mode: SPIN while an op is open, POLL_OP from its first datagram, else SLEEP."""
        if self.resolved_spin:
            return SPIN
        return POLL_OP if self.poll_op else SLEEP
