"""What a paced stream is asked for: --rate (packets/s, or a bit rate over each datagram's link bytes),
--burst, --pattern, --seed and --spin, each parsed and checked into one ``PaceSpec``.

A bit rate counts the bytes a datagram occupies on the link as the writer hands it over: every
frame of it (each fragment when it is fragmented), Ethernet header + IPv4 header + the UDP header
and payload it carries. ``lo`` and veth frame every writer's datagrams this way and add no FCS,
preamble or inter-frame gap; a physical Ethernet link adds 24 bytes per frame (IEEE 802.3: 7
preamble + 1 start delimiter + 4 FCS + 12 inter-frame gap) after padding it to 60 bytes:
``link_bytes(..., physical=True)``.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from rawpacer.errors import UsageError, require
from rawpacer.headers import ETH_HLEN, UDP_HLEN, VLAN_HLEN
from rawpacer.headers.family import family
from rawpacer.headers.fragment import fragment_spans
from rawpacer.limits import MAX_BURST, MAX_RATE_PPS, MAX_SEED, MIN_RATE_PPS

PATTERNS = ("constant", "poisson")

PHYSICAL_ETHERNET_OVERHEAD = 24
"""Bytes a physical Ethernet link adds to each frame: preamble 7, SFD 1, FCS 4, inter-frame gap 12."""

MIN_ETHERNET_FRAME = 60
"""Shortest Ethernet frame without its FCS (IEEE 802.3 pads shorter ones on a physical link)."""

_PREFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_SYNTAX = re.compile(
    r"^\s*(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*(?P<prefix>[kmg]?)(?P<unit>pps|bit/s|bit|)\s*$",
    re.IGNORECASE,
)
_ALLOWED = "use packets/s like 250000, 10k, 10kpps, 1.5Mpps, or a bit rate like 500kbit, 200Mbit, 1Gbit"
_RANGE = f"{MIN_RATE_PPS:g}-{MAX_RATE_PPS:,.0f} packets/s"


def link_bytes(
    payload_len: int, *, mtu: int | None = None, ip_version: int = 4, vlan: bool = False, physical: bool = False
) -> int:
    """Bytes one UDP datagram with ``payload_len`` bytes occupies on the link, summed over its frames:
    Ethernet header (and 802.1Q tag), IP header (and IPv6 Fragment header), UDP header, payload.

    Fragmented at ``mtu`` when it does not fit (no ``mtu``: one frame). ``physical`` adds what a
    physical Ethernet link adds per frame (padding to 60, then 24 bytes).
    """
    require(
        isinstance(payload_len, int) and not isinstance(payload_len, bool) and payload_len >= 0,
        f"payload_len {payload_len!r} is not allowed; use a byte count of 0 or more",
    )
    fam = family(ip_version)
    ip_payload = UDP_HLEN + payload_len
    spans = fragment_spans(ip_payload, mtu, ip_version) if mtu is not None else [(0, ip_payload, False)]
    headers = ETH_HLEN + (VLAN_HLEN if vlan else 0) + fam.header_len
    headers += fam.fragment_header_len if len(spans) > 1 else 0
    total = 0
    for start, end, _ in spans:
        frame = headers + end - start
        total += max(frame, MIN_ETHERNET_FRAME) + PHYSICAL_ETHERNET_OVERHEAD if physical else frame
    return total


@dataclass(frozen=True)
class Rate:
    """A --rate as given: ``exact`` packets/s (``unit="pps"``) or bits/s (``unit="bit/s"``)."""

    exact: Fraction
    unit: Literal["pps", "bit/s"]
    text: str

    @property
    def value(self) -> float:
        """The rate in its unit (packets/s or bits/s)."""
        return float(self.exact)

    def pps(self, frame_bytes: int | Fraction | None = None) -> float:
        """Datagrams per second: the rate itself, or a bit rate over ``frame_bytes`` link bytes each."""
        return float(self.exact_pps(frame_bytes))

    def exact_pps(self, frame_bytes: int | Fraction | None = None) -> Fraction:
        """``pps`` as an exact fraction, so a bit rate's schedule period is exact (200Mbit, 1542 B: 61680 ns).
        ``frame_bytes`` may be a Fraction: the mean link bytes of a frame size mix (``--sizes``)."""
        if self.unit == "pps":
            return self.exact
        require(
            isinstance(frame_bytes, (int, Fraction)) and not isinstance(frame_bytes, bool) and frame_bytes > 0,
            f"rate {self.text!r} is a bit rate; it needs each datagram's link bytes (got {frame_bytes!r})",
        )
        assert isinstance(frame_bytes, (int, Fraction))  # for mypy: checked just above
        pps = self.exact / (8 * frame_bytes)
        require(
            MIN_RATE_PPS <= pps <= MAX_RATE_PPS,
            f"rate {self.text!r} is {float(pps):,.6g} packets/s with {float(frame_bytes):g}-byte frames; allowed: {_RANGE}",
        )
        return pps

    def __str__(self) -> str:
        if self.unit == "pps":
            return f"{self.value:,.6g} pps"
        return f"{self.value / 1e6:,.6g} Mbit/s"


def parse_rate(text: str | float) -> Rate:
    """``10k``, ``10kpps``, ``1.5Mpps``, ``250000``, ``500kbit``, ``200Mbit``, ``1Gbit`` -> Rate.

    Prefixes are SI and case-blind (k 10^3, M 10^6, G 10^9); a number alone is packets/s.
    UsageError with one line naming the value otherwise (zero, negative, NaN, inf, unknown units).
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UsageError(f"rate {text!r} is not allowed; {_ALLOWED}")
    if not isinstance(text, str):
        require(
            math.isfinite(text) and MIN_RATE_PPS <= text <= MAX_RATE_PPS,
            f"rate {text!r} is out of range; allowed: {_RANGE}",
        )
        return Rate(Fraction(repr(float(text))), "pps", f"{text:g}")
    match = _SYNTAX.match(text)
    if not match:
        raise UsageError(f"rate {text!r} is not allowed; {_ALLOWED}")
    number = match["number"]
    require(math.isfinite(float(number)), f"rate {text!r} is out of range; allowed: {_RANGE}")
    value = Fraction(number) * _PREFIX[match["prefix"].lower()]
    unit: Literal["pps", "bit/s"] = "bit/s" if match["unit"].lower().startswith("bit") else "pps"
    require(value > 0, f"rate {text!r} is out of range; allowed: {_RANGE}")
    if unit == "pps":
        require(MIN_RATE_PPS <= value <= MAX_RATE_PPS, f"rate {text!r} is out of range; allowed: {_RANGE}")
    return Rate(value, unit, text.strip())


def parse_burst(value: int | str) -> int:
    """--burst: datagrams per departure, 1..MAX_BURST (1024, sendmmsg's most); UsageError otherwise."""
    allowed = f"use an integer 1-{MAX_BURST}"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError(f"burst {value!r} is not allowed; {allowed}")
    text = str(value).strip()
    require(text.isdigit(), f"burst {value!r} is not allowed; {allowed}")
    require(1 <= int(text) <= MAX_BURST, f"burst {value!r} is out of range; {allowed}")
    return int(text)


def parse_pattern(value: str) -> str:
    """--pattern: ``constant`` (even gaps) or ``poisson`` (exponential gaps); UsageError otherwise."""
    require(value in PATTERNS, f"pattern {value!r} is not allowed; use one of: {', '.join(PATTERNS)}")
    return value


def parse_seed(value: int | str | None) -> int:
    """--seed: 0..2**63-1; None draws a fresh one (to be recorded). UsageError otherwise."""
    if value is None:
        return secrets.randbelow(MAX_SEED + 1)
    allowed = f"use an integer 0-{MAX_SEED}"
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    require(text.isdigit(), f"seed {value!r} is not allowed; {allowed}")
    require(int(text) <= MAX_SEED, f"seed {value!r} is out of range; {allowed}")
    return int(text)


SPINS = ("adaptive", "full")
"""``--spin``: sleep, then spin for a margin learned from this host's wake-ups; or spin only (no sleeps)."""


def parse_spin(value: str) -> str:
    """``--spin``: adaptive (sleep, then spin for the margin wake-ups need here) or full (spin only)."""
    text = str(value).strip().lower()
    require(text in SPINS, f"spin {value!r} is not allowed; use {' or '.join(SPINS)}")
    return text


DEFAULT_CATCH_UP = 1.25
"""How much faster than the schedule a late pacer may run (gaps no shorter than 1/1.25 of theirs):
the headroom issue 12 asks of a writer (an unpaced rate of at least 1.25x the target)."""
CATCH_UP_BURST = "burst"
"""``--catch-up burst``: a late pacer sends what is due back to back (an infinite factor), as
sockperf and tcpreplay do."""


def parse_catch_up(value: str | float | None) -> float:
    """``--catch-up``: a factor of 1 (never faster than the schedule) or more, or burst (inf);
    None (not given) is the default, DEFAULT_CATCH_UP."""
    if value is None:
        return DEFAULT_CATCH_UP
    allowed = f"use a factor of 1 or more (default {DEFAULT_CATCH_UP:g}) or {CATCH_UP_BURST}"
    text = str(value).strip().lower()
    if text in (CATCH_UP_BURST, "inf"):
        return math.inf
    try:
        factor = float(text) if not isinstance(value, bool) else math.nan
    except ValueError:
        raise UsageError(f"catch-up {value!r} is not allowed; {allowed}") from None
    require(1 <= factor < math.inf, f"catch-up {value!r} is out of range; {allowed}")
    return factor


@dataclass(frozen=True, kw_only=True)
class Waits:
    """How a pacer waits for each departure (``spin``: adaptive or full) and how fast it may catch up
    when late (``catch_up``: a factor, inf for back to back): what ``--spin`` and ``--catch-up`` ask
    of a paced stream and of a paced replay alike."""

    spin: str = "adaptive"
    catch_up: float = DEFAULT_CATCH_UP

    def pacer_args(self) -> dict[str, Any]:
        """The ``Pacer`` keywords they are."""
        return {"spin": self.spin, "catch_up": self.catch_up}


def catch_up_label(factor: float) -> float | str:
    """A catch-up factor as the JSON and the tables show it: the number, or ``burst`` for inf
    (JSON has no infinity)."""
    return CATCH_UP_BURST if math.isinf(factor) else factor


@dataclass(frozen=True)
class PaceSpec(Waits):
    """Everything a paced stream is asked for, checked: rate, burst, pattern, (Poisson) seed, how the
    pacer waits and how fast it may catch up when late."""

    rate: Rate
    burst: int = 1
    pattern: str = "constant"
    seed: int | None = None

    @classmethod
    def parse(
        cls,
        rate: str | float | Rate,
        burst: int | str = 1,
        pattern: str = "constant",
        seed: int | str | None = None,
        spin: str = "adaptive",
        catch_up: str | float | None = None,
    ) -> PaceSpec:
        """The options as the CLI gets them; a Poisson stream without a seed gets a fresh one."""
        pattern = parse_pattern(pattern)
        require(
            seed is None or pattern == "poisson",
            f"seed {seed!r} applies to --pattern poisson only; drop it or use --pattern poisson",
        )
        return cls(
            rate if isinstance(rate, Rate) else parse_rate(rate),
            parse_burst(burst),
            pattern,
            parse_seed(seed) if pattern == "poisson" else None,
            spin=parse_spin(spin),
            catch_up=parse_catch_up(catch_up),
        )

    def pps(self, frame_bytes: int | Fraction | None = None) -> float:
        """Target datagrams per second (a bit rate needs each datagram's link bytes, or a mix's mean)."""
        return self.rate.pps(frame_bytes)
