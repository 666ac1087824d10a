"""How many ops to time: Go's b.N growth, and the --benchtime syntax (``1s``, ``0.5``, ``200ms``, ``50x``)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from rawpacer.errors import UsageError

MAX_GROWTH = 100
MAX_N = 1_000_000_000
HEADROOM = 1.2
MAX_BENCHTIME_S = 3600.0
_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "m": 60.0}
_SYNTAX = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|ms|us|µs|ns|m|x)?\s*$")

T = TypeVar("T")


@dataclass(frozen=True)
class Benchtime:
    """A target time per writer, or (``Nx``) a fixed number of ops as Go's ``-benchtime 100x``."""

    seconds: float = 1.0
    ops: int | None = None

    def capped(self, seconds: float) -> Benchtime:
        """This benchtime, no longer than ``seconds`` (slow writers); a fixed op count stays."""
        return Benchtime(min(self.seconds, seconds), self.ops)

    def go_flag(self) -> str:
        """The same benchtime spelled for ``go test -test.benchtime``."""
        return f"{self.ops}x" if self.ops is not None else f"{round(self.seconds * 1e9)}ns"

    def __str__(self) -> str:
        return f"{self.ops}x" if self.ops is not None else f"{self.seconds:g}s"


def parse_benchtime(text: str) -> Benchtime:
    """``1s``/``0.5``/``200ms``/``50x`` -> Benchtime; UsageError naming the value otherwise."""
    match = _SYNTAX.match(str(text))
    allowed = "use a positive duration like 1s, 0.5, 200ms, or an op count like 50x"
    if not match:
        raise UsageError(f"benchtime {text!r} is not allowed; {allowed}")
    number, unit = match.group(1), match.group(2) or ""
    if unit == "x":
        if "." in number or int(number) < 1:
            raise UsageError(f"benchtime {text!r} is not allowed; {allowed}")
        return Benchtime(seconds=math.inf, ops=int(number))
    seconds = float(number) * _UNITS[unit]
    if not 0 < seconds <= MAX_BENCHTIME_S:
        raise UsageError(f"benchtime {text!r} is out of range; use more than 0 and at most {MAX_BENCHTIME_S:g}s")
    return Benchtime(seconds=seconds)


def predict_n(goal_ns: float, last_n: int, last_ns: float) -> int:
    """Go's next b.N: aim 20% past the goal from the last run's rate, grow at most 100x, at least +1."""
    n = math.ceil(goal_ns * last_n / max(last_ns, 1) * HEADROOM)
    n = min(n, MAX_GROWTH * last_n)
    n = max(n, last_n + 1)
    return min(n, MAX_N)


@dataclass
class Timed(Generic[T]):
    """One run of n ops: its wall time and whatever the run returned."""

    n: int
    elapsed_ns: int
    value: T


def calibrate(run: Callable[[int], Timed[T]], benchtime: Benchtime) -> list[Timed[T]]:
    """Run 1 op, then grow n like Go until a run lasts benchtime; all runs, the last is the result."""
    if benchtime.ops is not None:
        return [run(benchtime.ops)]
    goal = benchtime.seconds * 1e9
    runs = [run(1)]
    while runs[-1].elapsed_ns < goal and runs[-1].n < MAX_N:
        runs.append(run(predict_n(goal, runs[-1].n, runs[-1].elapsed_ns)))
    return runs
