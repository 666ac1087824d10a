"""A device with known limits, for the unit tests and the docs: the searches run on it without root.

It models the receive path as a server of ``capacity_pps`` datagrams per second behind a buffer of
``buffer_frames``, fed by a writer that reaches at most ``writer_max_pps`` unpaced (``paced_max_pps``
paced: pacing costs a little) and by readers that take at most ``reader_capacity_pps``. A fluid model: what arrives faster than the slower of the two drains is
lost once the buffer is full. ``noise`` varies the capacity per trial (seeded, reproducible); ``drop``
loses that fraction of what is delivered at any rate, as ``--dut drop:FRACTION`` does (no rate is
loss-free then: the NDR is unreachable, a PDR above ``drop`` is not).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from rawpacer.bench.rfc2544_suite.sizes import FrameSize
from rawpacer.bench.rfc2544_suite.trial import Trial, TrialResult

MAX_UTILISATION = 0.95
"""Queueing delay is modelled as M/M/1 at this utilisation at most (the mean wait then is 19 × base)."""

MAX_LATENCY_SAMPLES = 20_000
"""Latency samples a synthetic trial reports at most (enough for p99.9)."""


@dataclass
class SyntheticDevice:
    """A pretend writer and receive path with known limits (pps, or a function of the frame size)."""

    capacity_pps: float | Callable[[int], float]
    writer_max_pps: float | Callable[[int], float]
    writer: str = "synthetic"
    paced_max_pps: float | None = None
    reader_capacity_pps: float | None = None
    buffer_frames: int = 1000
    noise: float = 0.0
    refuses: bool = False
    base_latency_ns: int = 20_000
    latency_source: str = "writer-clock"
    seed: int = 0
    drop: float = 0.0
    trials: list[Trial] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @staticmethod
    def _at(value: float | Callable[[int], float], frame: FrameSize) -> float:
        return value(frame.size) if callable(value) else float(value)

    def max_rate(self, frame: FrameSize) -> float:
        """The writer's unpaced maximum at this frame size."""
        return self._at(self.writer_max_pps, frame)

    def drain_pps(self, frame: FrameSize) -> float:
        """What the path and the readers together take per second, before noise."""
        capacity = self._at(self.capacity_pps, frame)
        return capacity if self.reader_capacity_pps is None else min(capacity, self.reader_capacity_pps)

    def run(self, trial: Trial) -> TrialResult:
        """Offer the trial; a writer asked for more than it reaches falls short (or, ``refuses``, the
        kernel refuses the excess: ``not_sent``); the path loses what it cannot drain."""
        self.trials.append(trial)
        writer_max = self.max_rate(trial.frame)
        reach = writer_max if trial.burst or self.paced_max_pps is None else self.paced_max_pps
        target = writer_max if trial.rate_pps is None else trial.rate_pps
        achieved = min(target, reach)
        planned = trial.planned
        duration = planned / target
        sent = planned if achieved >= target or not self.refuses else round(achieved * duration)
        if not self.refuses:
            duration = sent / achieved
        drain = self.drain_pps(trial.frame) * max(0.0, 1 + self.noise * self._random.gauss(0.0, 1.0))
        delivered = min(sent, math.floor(self.buffer_frames + drain * duration))
        delivered -= math.ceil(delivered * self.drop)
        latencies = None
        if trial.latency and delivered:
            utilisation = min(achieved / max(drain, 1e-9), MAX_UTILISATION)
            mean_wait = self.base_latency_ns * utilisation / (1 - utilisation)
            latencies = [
                self.base_latency_ns + round(self._random.expovariate(1 / mean_wait) if mean_wait else 0)
                for _ in range(min(delivered, MAX_LATENCY_SAMPLES))
            ]
        return TrialResult(
            trial,
            sent=sent,
            delivered=delivered,
            intact=delivered,
            lost=sent - delivered,
            not_sent=planned - sent,
            achieved_pps=achieved,
            latencies_ns=latencies,
            latency_source=self.latency_source if latencies else None,
            reader_capacity_pps=self.reader_capacity_pps,
            warmup_s=trial.warmup_s,
            drain_s=trial.drain_s,
        )
