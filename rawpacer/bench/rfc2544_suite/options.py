"""The RFC 2544 run's options, parsed and checked: one UsageError line per bad value.

``make_settings`` takes what the CLI passes (text) or what Python passes (numbers, sequences) and
returns the ``Settings`` every search reads. Fractions may be written ``0.5%`` or ``0.005``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rawpacer.bench.calibrate import MAX_BENCHTIME_S, parse_benchtime
from rawpacer.bench.rfc2544_suite.sizes import FrameSize, default_sizes, frame_sizes
from rawpacer.bench.rfc2544_suite.trial import TESTS, WRITER_SHORTFALL, Trial
from rawpacer.errors import UsageError, require
from rawpacer.traffic.sizes import NAMED_MIXES, SizeMix
from rawpacer.traffic.sizes import parse_sizes as parse_mix

DEFAULT_TRIAL_S = 2.0
"""Seconds per trial; RFC 2544 (section 24) asks for 60, which ``--trial 60s`` gives."""

RFC_TRIAL_S = 60.0
RFC_DRAIN_S = 2.0
"""RFC 2544 (section 23) waits 2 s after a 60 s trial for late frames; shorter trials wait in proportion."""

MIN_DRAIN_S = 0.25
"""The shortest wait for late datagrams, whatever the trial length (readers may still be draining)."""

DEFAULT_WARMUP_S = 0.25
"""Uncounted traffic before each trial (neighbour entries, caches, readers awake)."""

DEFAULT_RESOLUTION = 0.005
"""Throughput resolution, as a fraction of the writer's unpaced maximum (0.5 %)."""

RESOLUTION_RANGE = (0.0001, 0.1)
DEFAULT_LOSS_STEP = 0.1
"""Frame loss rate steps (RFC 2544 26.3: 10 % of the maximum or finer)."""

LOSS_STEP_RANGE = (0.001, 0.1)
MAX_LOSS_TOLERANCE = 0.1
DEFAULT_B2B_REPEATS = 3
"""Back-to-back searches per frame size, averaged. RFC 2544 26.4 asks for at least 50: a default this
small keeps a run short (RFC_B2B_REPEATS is the RFC's); the report says how many were made."""

RFC_B2B_REPEATS = 50
"""RFC 2544 26.4: back-to-back trials repeated at least 50 times, the average reported."""

MAX_REPEATS = 1000

SEARCHES = ("binary", "mlr")
"""Throughput searches: RFC 2544's binary search for the zero-loss rate, or MLRsearch (RFC 9971) for
NDR and PDR at once (``rfc2544_suite.mlr``)."""

DEFAULT_PDR = 0.005
"""The PDR's loss ratio (0.5 %, FD.io CSIT's); ``--pdr`` takes any in (0, 100 %)."""

MAX_SEARCH_REPEATS = 100


def drain_for(trial_s: float) -> float:
    """How long to wait for late datagrams after a trial: RFC 2544's 2 s per 60 s, at least MIN_DRAIN_S."""
    return min(RFC_DRAIN_S, max(MIN_DRAIN_S, RFC_DRAIN_S * trial_s / RFC_TRIAL_S))


def bisection_steps(resolution: float) -> int:
    """Halvings of [0, max] until the interval is at most ``resolution`` of max: ⌈log2(1/resolution)⌉."""
    return math.ceil(math.log2(1 / resolution))


@dataclass(frozen=True)
class Settings:
    """Everything the searches need to know, checked. Fractions are of the writer's unpaced maximum."""

    sizes: tuple[FrameSize, ...] = field(default_factory=lambda: frame_sizes(default_sizes()))
    tests: tuple[str, ...] = TESTS
    trial_s: float = DEFAULT_TRIAL_S
    resolution: float = DEFAULT_RESOLUTION
    loss_tolerance: float = 0.0
    shortfall: float = WRITER_SHORTFALL
    loss_step: float = DEFAULT_LOSS_STEP
    b2b_repeats: int = DEFAULT_B2B_REPEATS
    latency_trials: int = 1
    warmup_s: float = DEFAULT_WARMUP_S
    drain_s: float | None = None
    search: str = "binary"
    pdr: float = DEFAULT_PDR
    repeat: int = 1
    """Throughput searches per entry (``--repeat``): their spread says how far repeated searches agree."""

    @property
    def drain(self) -> float:
        """The wait for late datagrams after each trial: as given, or scaled from the trial length."""
        return drain_for(self.trial_s) if self.drain_s is None else self.drain_s

    def paced(self, test: str, frame: FrameSize, rate_pps: float, *, latency: bool = False) -> Trial:
        """A trial offering ``rate_pps`` for one trial length, with this run's warm-up and drain."""
        return Trial(test, frame, rate_pps, self.trial_s, latency=latency, warmup_s=self.warmup_s, drain_s=self.drain)

    def burst(self, frame: FrameSize, frames: int) -> Trial:
        """A back-to-back burst of ``frames`` at the writer's maximum rate."""
        return Trial("back-to-back", frame, frames=frames, warmup_s=self.warmup_s, drain_s=self.drain)

    def params(self) -> dict[str, Any]:
        """The settings as the JSON's ``params`` records them (with the RFC's own values beside)."""
        return {
            "sizes": [f.size if f.mix is None else f.label for f in self.sizes],
            "payload_bytes": [f.payload_bytes for f in self.sizes],
            "ipv6": any(f.ipv6 for f in self.sizes),
            "tests": list(self.tests),
            "trial_s": self.trial_s,
            "rfc_trial_s": RFC_TRIAL_S,
            "warmup_s": self.warmup_s,
            "drain_s": self.drain,
            "resolution": self.resolution,
            "loss_tolerance": self.loss_tolerance,
            "writer_shortfall": self.shortfall,
            "loss_step": self.loss_step,
            "back_to_back_repeats": self.b2b_repeats,
            "rfc_back_to_back_repeats": RFC_B2B_REPEATS,
            "latency_trials": self.latency_trials,
            "search": self.search,
            "pdr": self.pdr if self.search == "mlr" else None,
            "repeat": self.repeat,
        }


def _number(name: str, value: object, allowed: str) -> float:
    if isinstance(value, bool):
        raise UsageError(f"{name} {value!r} is not a number; use {allowed}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        scale = 0.01 if text.endswith("%") else 1.0
        try:
            number = float(text.removesuffix("%")) * scale
        except ValueError:
            raise UsageError(f"{name} {value!r} is not a number; use {allowed}") from None
    require(math.isfinite(number), f"{name} {value!r} is not a finite number; use {allowed}")
    return number


def parse_fraction(name: str, value: object, low: float, high: float) -> float:
    """A fraction written ``0.5%`` or ``0.005``, in low..high; UsageError naming the option otherwise."""
    allowed = f"{low * 100:g}%-{high * 100:g}%, written like 0.5% or 0.005"
    number = _number(name, value, allowed)
    require(low <= number <= high, f"{name} {value!r} is out of range; use {allowed}")
    return number


def parse_open_fraction(name: str, value: object) -> float:
    """A fraction strictly between 0 and 1 (0 % and 100 %), written ``0.5%`` or ``0.005``."""
    allowed = "more than 0% and less than 100%, written like 0.5% or 0.005"
    number = _number(name, value, allowed)
    require(0 < number < 1, f"{name} {value!r} is out of range; use {allowed}")
    return number


def parse_search(value: object) -> str:
    """``binary`` (RFC 2544) or ``mlr`` (MLRsearch, RFC 9971)."""
    text = str(value).strip()
    require(text in SEARCHES, f"search {value!r} is not allowed; use one of: {', '.join(SEARCHES)}")
    return text


def parse_count(name: str, value: object, low: int, high: int) -> int:
    """A whole number in low..high, given as text or number."""
    allowed = f"a whole number {low}-{high}"
    number = _number(name, value, allowed)
    require(number == int(number) and low <= number <= high, f"{name} {value!r} is not allowed; use {allowed}")
    return int(number)


def parse_duration(value: object, name: str = "trial", *, zero: bool = False) -> float:
    """Seconds from ``2s``, ``500ms``, ``60s`` or a number (at most an hour; 0 only when ``zero``)."""
    if zero and str(value).strip() in ("0", "0.0", "0s"):
        return 0.0
    allowed = f"use a duration like 2s, 500ms or 60s (more than 0, at most {MAX_BENCHTIME_S:g}s)"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        try:
            parsed = parse_benchtime(str(value))
        except UsageError:
            raise UsageError(f"{name} {value!r} is not allowed; {allowed}") from None
        require(parsed.ops is None, f"{name} {value!r} is not allowed; {allowed}")
        seconds = parsed.seconds
    require(math.isfinite(seconds) and 0 < seconds <= MAX_BENCHTIME_S, f"{name} {value!r} is out of range; {allowed}")
    return seconds


def _items(value: str | Sequence[Any]) -> list[Any]:
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    require(bool(parts) and all(str(p) for p in parts), f"list {value!r} is empty or has an empty item")
    return parts


def parse_tests(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``throughput,latency,loss,back-to-back`` (any subset, any order) -> the tests in RFC order."""
    if value is None:
        return TESTS
    chosen = _items(value)
    for name in chosen:
        require(name in TESTS, f"test {name!r} is not allowed; use any of: {', '.join(TESTS)}")
    require(len(set(chosen)) == len(chosen), f"tests {value!r} names a test twice")
    return tuple(t for t in TESTS if t in chosen)


def _is_mix(part: str) -> bool:
    """True when a ``--sizes`` item names a size mix (``imix``, ``64:7,...``) rather than one frame size."""
    return part.strip().lower() in NAMED_MIXES or ":" in part


def names_a_mix(value: str | Sequence[int | str] | None) -> bool:
    """True when ``--sizes`` has a size mix among its rows (its writers must send frame pools)."""
    return value is not None and any(_is_mix(str(p)) for p in _items(value))


def parse_sizes(
    value: str | Sequence[int | str] | None, *, ipv6: bool = False, mtu: int | None = None
) -> tuple[FrameSize, ...]:
    """``64,128,1518,imix`` (frame sizes with the FCS, as RFC 2544 counts them, and size mixes) -> FrameSizes;
    None: the RFC's. In a string, consecutive ``SIZE:WEIGHT`` items form one mix (``64,64:7,594:4,1518:1``
    is 64 and one mix); in a sequence, each item is one row (``["64", "64:7,594:4,1518:1"]``)."""
    if value is None:
        return frame_sizes(default_sizes(ipv6), ipv6=ipv6, mtu=mtu)
    parts = [str(p).strip() for p in _items(value)]
    if isinstance(value, str):  # regroup a comma-split mix: its weighted items are adjacent
        grouped: list[str] = []
        for part in parts:
            joins = ":" in part and grouped and ":" in grouped[-1] and grouped[-1].lower() not in NAMED_MIXES
            grouped[-1:] = [f"{grouped[-1]},{part}"] if joins else [*grouped[-1:], part]
        parts = grouped
    sizes: list[int | SizeMix] = []
    for part in parts:
        if _is_mix(part):
            sizes.append(parse_mix(part))
            continue
        try:
            sizes.append(int(part))
        except ValueError:
            raise UsageError(
                f"frame size {part!r} is not allowed; use sizes like 64,128,1518, "
                f"a named mix ({', '.join(NAMED_MIXES)}) or a mix like 64:7,594:4,1518:1"
            ) from None
    return frame_sizes(sizes, ipv6=ipv6, mtu=mtu)


def make_settings(
    sizes: str | Sequence[int | str] | None = None,
    tests: str | Sequence[str] | None = None,
    trial: object = DEFAULT_TRIAL_S,
    resolution: object = DEFAULT_RESOLUTION,
    loss_tolerance: object = 0.0,
    loss_step: object = DEFAULT_LOSS_STEP,
    b2b_repeats: object = DEFAULT_B2B_REPEATS,
    latency_trials: object = 1,
    warmup: object = DEFAULT_WARMUP_S,
    drain: object | None = None,
    search: object = "binary",
    pdr: object = DEFAULT_PDR,
    repeat: object = 1,
    ipv6: bool = False,
    mtu: int | None = None,
) -> Settings:
    """Settings from CLI text or Python values, every one checked (UsageError, one line)."""
    return Settings(
        sizes=parse_sizes(sizes, ipv6=ipv6, mtu=mtu),
        tests=parse_tests(tests),
        trial_s=parse_duration(trial),
        resolution=parse_fraction("resolution", resolution, *RESOLUTION_RANGE),
        loss_tolerance=parse_fraction("loss tolerance", loss_tolerance, 0.0, MAX_LOSS_TOLERANCE),
        loss_step=parse_fraction("loss step", loss_step, *LOSS_STEP_RANGE),
        b2b_repeats=parse_count("back-to-back repeats", b2b_repeats, 1, MAX_REPEATS),
        latency_trials=parse_count("latency trials", latency_trials, 1, MAX_REPEATS),
        warmup_s=parse_duration(warmup, "warm-up", zero=True),
        drain_s=None if drain is None else parse_duration(drain, "drain", zero=True),
        search=parse_search(search),
        pdr=parse_open_fraction("pdr", pdr),
        repeat=parse_count("repeat", repeat, 1, MAX_SEARCH_REPEATS),
    )
