"""One RFC 2544 trial: what the suite's searches ask a device for, what the device reports, and the verdict.

The device under test is the kernel's receive path into the readers; ``Device`` is the seam between
the pure searches (``search.py``) and whatever sends the datagrams: the live runner in a sandbox, or
``synthetic.SyntheticDevice`` in the tests. Rates are datagrams per second over all readers together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np

from rawpacer.bench.rfc2544_suite.sizes import FrameSize
from rawpacer.errors import require
from rawpacer.host import HostActivity

TESTS = ("throughput", "latency", "loss", "back-to-back")
"""The four tests of RFC 2544 section 26 (26.1 to 26.4), in the order a run performs them."""

LATENCY_SOURCES = ("kernel-tx", "writer-clock")
"""Where a datagram's departure time comes from: the kernel's software TX timestamp, or the writer's
clock read just before the send (paths without SO_TIMESTAMPING)."""

ONE_PAUSE = 1
"""Stalls of the pacer (departures 20 ms or more late: the host took the CPU away) a trial may have and
still count as offering its rate, the pause left out of the rate. A writer that cannot keep up falls
behind again and again (8-16 stalls in a 2 s trial at 90 % of its maximum, measured); a single pause
of the VM (one took 62 ms) failed trials at half the writer's maximum and made
two searches disagree by 40 %."""

WRITER_SHORTFALL = 0.02
"""A paced trial whose achieved offered rate is more than 2 % below its target did not offer the rate:
the writer, not the kernel, was the limit (the issue's trial hygiene)."""


class Outcome(str, Enum):
    """A trial's verdict: every datagram arrived intact (within the tolerance), some did not, or the
    writer could not offer what was asked (then the trial says nothing about the kernel)."""

    PASS = "pass"
    LOSS = "loss"
    WRITER = "writer-limited"


@dataclass(frozen=True)
class Trial:
    """What one trial offers: ``rate_pps`` for ``duration_s``, or (``rate_pps`` None) a burst of ``frames``
    back to back at the writer's maximum rate; warm-up and drain are what the methodology asks for."""

    test: str
    frame: FrameSize
    rate_pps: float | None = None
    duration_s: float | None = None
    frames: int | None = None
    latency: bool = False
    warmup_s: float = 0.0
    drain_s: float = 0.0

    def __post_init__(self) -> None:
        require(self.test in TESTS, f"test {self.test!r} is not allowed; use one of: {', '.join(TESTS)}")
        if self.rate_pps is None:
            require(
                self.frames is not None and self.frames >= 1 and self.duration_s is None,
                "a burst trial needs frames >= 1 and no duration",
            )
        else:
            require(
                math.isfinite(self.rate_pps) and self.rate_pps > 0, f"trial rate {self.rate_pps!r} must be positive"
            )
            require(
                self.duration_s is not None and self.duration_s > 0 and self.frames is None,
                "a paced trial needs a positive duration and no frame count",
            )
        require(self.warmup_s >= 0 and self.drain_s >= 0, "warm-up and drain must not be negative")

    @property
    def burst(self) -> bool:
        """True for a back-to-back burst at the writer's maximum rate."""
        return self.rate_pps is None

    @property
    def planned(self) -> int:
        """Datagrams the trial offers: the burst length, or rate × duration (at least one)."""
        if self.frames is not None:
            return self.frames
        assert self.rate_pps is not None and self.duration_s is not None  # guaranteed by __post_init__
        return max(1, round(self.rate_pps * self.duration_s))


@dataclass(frozen=True)
class TrialResult:
    """What a device reports after the stream stopped and the late datagrams were waited for.

    ``sent`` counts datagrams the kernel accepted, ``not_sent`` those the writer could not send
    (ENOBUFS, a full ring, or it fell short of the schedule); ``delivered`` counts datagrams the readers
    received, ``intact`` those whose content was right, ``lost`` = sent not delivered. ``achieved_pps`` is
    the offered rate measured (sent over the sending time). ``pause_ns`` is one pause of the sending host
    the pacer could not make up (its only stall, ``ONE_PAUSE``), 0 when there was none or more than one.
    Latencies are per datagram, in ns. ``dut_drops`` counts what a DUT's counters say it dropped;
    ``host`` is what else the host did meanwhile (rawpacer.host).
    """

    trial: Trial
    sent: int
    delivered: int
    intact: int
    lost: int
    not_sent: int = 0
    achieved_pps: float | None = None
    pause_ns: int = 0
    latencies_ns: Sequence[int] | np.ndarray | None = None
    latency_source: str | None = None
    reader_capacity_pps: float | None = None
    warmup_s: float = 0.0
    drain_s: float = 0.0
    notes: tuple[str, ...] = ()
    dut_drops: int = 0
    """Datagrams the device under test's own counters say it dropped (qdisc drops, nftables drop
    rules, no route, fragmentation refused): a loss the DUT, not the readers' host, caused."""
    host: HostActivity | None = None
    duplicate: int = 0
    """Datagrams that arrived twice (by their sequence)."""
    reordered: int = 0
    """Datagrams that arrived after a higher sequence on their port (RFC 4737 3.3)."""
    reorder_extent: int | None = None
    """The largest reordering extent (RFC 4737 4.2.1); None when the datagrams carried no sequence."""
    sizes: dict[int, dict[str, int]] | None = None
    """A size mix's trial: frames per size (sent, delivered, intact), as the shaped stream counted them."""

    def __post_init__(self) -> None:
        for name in (
            "sent",
            "delivered",
            "intact",
            "lost",
            "not_sent",
            "pause_ns",
            "dut_drops",
            "duplicate",
            "reordered",
        ):
            require(getattr(self, name) >= 0, f"trial count {name} {getattr(self, name)} is negative")
        require(self.intact <= self.delivered, f"intact {self.intact} exceeds delivered {self.delivered}")
        require(
            self.latency_source is None or self.latency_source in LATENCY_SOURCES,
            f"latency source {self.latency_source!r} is not allowed; use one of: {', '.join(LATENCY_SOURCES)}",
        )

    @property
    def reordered_ratio(self) -> float | None:
        """RFC 4737 4.1: reordered over intact datagrams (None: not measured)."""
        if self.reorder_extent is None:
            return None
        return self.reordered / self.intact if self.intact else 0.0

    @property
    def loss_fraction(self) -> float:
        """Share of the datagrams sent that did not arrive intact (RFC 2544 26.3's frame loss, 0 to 1)."""
        if self.sent == 0:
            return 0.0
        return (self.sent - min(self.intact, self.sent)) / self.sent

    @property
    def delivered_pps(self) -> float | None:
        """Datagrams per second the readers had to take in: the achieved rate less what was lost."""
        if self.achieved_pps is None or self.sent == 0:
            return None
        return self.achieved_pps * min(self.delivered, self.sent) / self.sent

    @property
    def offered_pps(self) -> float | None:
        """The rate the writer offered while it ran: ``achieved_pps`` with the one pause left out."""
        if self.achieved_pps is None or self.achieved_pps <= 0 or self.pause_ns == 0:
            return self.achieved_pps
        sending_s = self.sent / self.achieved_pps - self.pause_ns / 1e9
        return self.sent / sending_s if sending_s > 0 else self.achieved_pps

    def writer_limited(self, shortfall: float = WRITER_SHORTFALL) -> bool:
        """True when the writer did not offer what was asked: datagrams not sent, or a rate well short
        (judged on ``offered_pps``: one pause of the host is not the writer's limit)."""
        if self.not_sent > 0 or self.sent == 0:
            return True
        target, offered = self.trial.rate_pps, self.offered_pps
        return target is not None and offered is not None and offered < target * (1 - shortfall)

    def outcome(self, loss_tolerance: float = 0.0, shortfall: float = WRITER_SHORTFALL) -> Outcome:
        """PASS when the writer offered the rate and at most ``loss_tolerance`` of it was lost (0: none)."""
        if self.writer_limited(shortfall):
            return Outcome.WRITER
        return Outcome.PASS if self.loss_fraction <= loss_tolerance else Outcome.LOSS


class Device(Protocol):
    """A writer sending into the readers: what the searches drive. The live adapter implements it in a
    sandbox (warm-up not counted, counters read after the stream stopped, late datagrams waited for)."""

    @property
    def writer(self) -> str:
        """The writer's name, as the results list it."""
        ...

    def max_rate(self, frame: FrameSize) -> float:
        """The writer's measured unpaced maximum for this frame size, datagrams per second: the top of
        the throughput search and the 100 % of the loss curve."""
        ...

    def run(self, trial: Trial) -> TrialResult:
        """Run one trial and report it (counters read after the stream stopped and the drain)."""
        ...
