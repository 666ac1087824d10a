"""``--vary FIELD=RANGE[:inc|random]``: per-packet header values, produced in bulk as numpy arrays.

A send path stamps the values into prebuilt frames (in C, never Python per packet); this module only
says which value packet *k* carries, from k alone: ``inc`` is ``low + k mod span``; ``random`` is a
counter-based draw, SplitMix64's output k + 1 from the field's key (itself SplitMix64 of the seed and the
field, so two fields never move in lockstep), reduced to the span by a 64x64-bit multiply's high half
(Lemire's multiply-shift: each value is hit by floor or ceil of 2**64 / span of the 2**64 draws, a
relative bias of at most span / 2**64, under 2**-32 for every span but IPv6's widest). The transmit
engine computes the same values in C (``_engine.c``); these are their numpy twin.

Address ranges must stay inside an allowed range, by default the benchmarking blocks every sandbox
address comes from (198.18.0.0/15, RFC 2544 appendix C.2.2; 2001:2::/48, RFC 5180 section 5.1),
and in practice the readers' (or writer's) range the caller passes as ``allowed``.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rawpacer.errors import UsageError, require
from rawpacer.headers.ipv6 import IPV6
from rawpacer.headers.vlan import MAX_VLAN_ID, MIN_VLAN_ID
from rawpacer.limits import MAX_PORT, MAX_SEED

MODES = ("inc", "random")
"""``inc``: the range in order, wrapping; ``random``: uniform draws from it (seeded SplitMix64, per packet)."""

GOLDEN = 0x9E3779B97F4A7C15
"""SplitMix64's increment, 2**64 / the golden ratio (Steele, Lea and Flood, OOPSLA 2014)."""

BENCHMARK_RANGES = {4: ipaddress.ip_network("198.18.0.0/15"), 6: ipaddress.ip_network("2001:2::/48")}
"""Where sandbox addresses come from (RFC 2544 appendix C.2.2; RFC 5180 section 5.1): the default allowed range."""

MAX_SPAN = 2**64
"""Most values one range holds: offsets into it are 64-bit."""

_HEX = re.compile(r"[0-9A-Fa-f]*")

Allowed = str | tuple[int | str, int | str]
"""An allowed range: ``"A-B"``, a CIDR block for addresses (``"198.19.0.0/24"``), or (low, high)."""


@dataclass(frozen=True)
class FieldSpec:
    """One field ``--vary`` can set: its name, whether it is an address, and the range it allows by default."""

    name: str
    address: bool
    low: int = 0
    high: int = 0
    dtype: npt.DTypeLike = np.uint16


FIELDS = {
    spec.name: spec
    for spec in (
        FieldSpec("sport", False, 1, MAX_PORT),
        FieldSpec("dport", False, 1, MAX_PORT),
        FieldSpec("src-ip", True),
        FieldSpec("dst-ip", True),
        FieldSpec("flow-label", False, 0, IPV6["flow_label"].max, np.uint32),
        FieldSpec("vlan", False, MIN_VLAN_ID, MAX_VLAN_ID),
    )
}
"""The fields ``--vary`` knows, in the order they are listed in messages. Ports start at 1 (0 is reserved,
RFC 768 uses it for "no source port"); VLAN ids are 1-4094 (IEEE 802.1Q)."""


@dataclass(frozen=True)
class Variation:
    """One parsed ``--vary``: packet *i* carries a value of ``low..high`` (integers; addresses as their
    integer value, ``version`` 4 or 6) chosen by ``mode``; ``seed`` is the random mode's (None for inc)."""

    field: str
    low: int
    high: int
    mode: str = "inc"
    seed: int | None = None
    version: int | None = None

    @property
    def span(self) -> int:
        """How many values the range holds."""
        return self.high - self.low + 1

    @property
    def key(self) -> int:
        """The random mode's PRNG key: SplitMix64's output 1 + the field's index from the seed (0 for inc)."""
        if self.seed is None:
            return 0
        return int(
            splitmix64(np.array([(self.seed + (list(FIELDS).index(self.field) + 1) * GOLDEN) % 2**64], np.uint64))[0]
        )

    def offsets(self, n: int, first: int = 0) -> npt.NDArray[np.uint64]:
        """Packets ``first .. first+n-1``'s offsets into the range (uint64): ``k mod span`` for inc, for
        random SplitMix64's output k + 1 from ``key`` reduced to the span (see the module's docstring)."""
        require(isinstance(n, int) and n >= 0, f"value count {n!r} is not a non-negative integer")
        k = np.arange(first, first + n, dtype=np.uint64)
        if self.mode == "random":
            draws = splitmix64(np.uint64(self.key) + (k + np.uint64(1)) * np.uint64(GOLDEN))
            return draws if self.span == 2**64 else _high_product(draws, self.span)
        return k if self.span == 2**64 else k % np.uint64(self.span)

    def values(self, n: int, first: int = 0) -> npt.NDArray[np.generic]:
        """Packets ``first .. first+n-1``'s values (``stream(first).take(n)``): see ``VaryStream.take`` for their type."""
        return self.stream(first).take(n)

    def stream(self, first: int = 0) -> VaryStream:
        """A stream of this variation's values from packet ``first``, taken a chunk at a time."""
        return VaryStream(self, first)


@dataclass
class VaryStream:
    """Successive chunks of a Variation's values: ``take(a)`` then ``take(b)`` is ``values(a + b)``."""

    variation: Variation
    position: int = 0

    def take(self, n: int) -> npt.NDArray[np.generic]:
        """The next ``n`` values: uint16 (ports, vlan) or uint32 (flow-label, IPv4 addresses) integers,
        or for IPv6 addresses an (n, 16) uint8 array of the packed addresses."""
        v = self.variation
        offsets = v.offsets(n, self.position)
        self.position += n
        if v.version == 6:
            return _ipv6_rows(v.low, offsets)
        dtype = np.uint32 if v.version == 4 else FIELDS[v.field].dtype
        return (offsets + np.uint64(v.low)).astype(dtype)


def splitmix64(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's output function (its mix of the state), element-wise, modulo 2**64."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _high_product(x: npt.NDArray[np.uint64], span: int) -> npt.NDArray[np.uint64]:
    """``(x * span) >> 64`` element-wise, from 32-bit halves (numpy has no 128-bit integer): x's draw in 0..span-1."""
    low32 = np.uint64(0xFFFFFFFF)
    xh, xl = x >> np.uint64(32), x & low32
    sh, sl = np.uint64(span >> 32), np.uint64(span & 0xFFFFFFFF)
    lh, hl = xl * sh, xh * sl
    middle = ((xl * sl) >> np.uint64(32)) + (lh & low32) + (hl & low32)
    high: npt.NDArray[np.uint64] = xh * sh + (lh >> np.uint64(32)) + (hl >> np.uint64(32)) + (middle >> np.uint64(32))
    return high


def _ipv6_rows(low: int, offsets: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """``low + offsets`` as packed IPv6 addresses, one 16-byte row each (128-bit sums in two 64-bit halves)."""
    low_hi, low_lo = np.uint64(low >> 64), np.uint64(low & (2**64 - 1))
    lo = offsets + low_lo  # wraps modulo 2**64: a wrap is the carry into the high half
    words = np.empty((len(offsets), 2), dtype=">u8")
    words[:, 0] = low_hi + (lo < low_lo).astype(np.uint64)
    words[:, 1] = lo
    return words.view(np.uint8).reshape(len(offsets), 16)


def _bound(spec: FieldSpec, text: str, what: str) -> tuple[int, int | None]:
    """One end of a range as an integer, and the IP version when the field is an address."""
    text = text.strip()
    require(text != "", f"--vary {spec.name}: {what} is empty")
    if spec.address:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise UsageError(f"--vary {spec.name}: {text!r} is not an IPv4 or IPv6 address") from None
        return int(address), address.version
    try:
        return int(text), None
    except ValueError:
        raise UsageError(f"--vary {spec.name}: {text!r} is not an integer") from None


def _show(value: int, version: int | None) -> str:
    return str(ipaddress.ip_address(value) if version == 4 else ipaddress.IPv6Address(value)) if version else str(value)


def _range(spec: FieldSpec, text: str) -> tuple[int, int, int | None]:
    """``A-B`` (or one value) as (low, high, IP version); UsageError if empty, reversed or mixed."""
    low_text, dash, high_text = text.partition("-")
    low, version = _bound(spec, low_text, "the range's start")
    high, high_version = _bound(spec, high_text, "the range's end") if dash else (low, version)
    require(version == high_version, f"--vary {spec.name}: range {text!r} mixes IPv4 and IPv6")
    require(low <= high, f"--vary {spec.name}: range {text!r} is reversed (give the smaller value first)")
    return low, high, version


def _allowed(spec: FieldSpec, allowed: Allowed | None, version: int | None) -> tuple[int, int, int | None]:
    """The allowed range for ``spec`` as (low, high, version): the caller's, or the field's default."""
    if allowed is None:
        if not spec.address:
            return spec.low, spec.high, None
        block = BENCHMARK_RANGES[version or 4]
        return int(block.network_address), int(block.broadcast_address), block.version
    if isinstance(allowed, tuple):
        low, low_version = _bound(spec, str(allowed[0]), "the allowed range's start")
        high, _ = _bound(spec, str(allowed[1]), "the allowed range's end")
        return low, high, low_version
    if spec.address and "/" in allowed:
        try:
            block = ipaddress.ip_network(allowed.strip(), strict=False)
        except ValueError:
            raise UsageError(f"--vary {spec.name}: allowed range {allowed!r} is not a CIDR block") from None
        return int(block.network_address), int(block.broadcast_address), block.version
    return _range(spec, allowed)


def parse_vary(
    text: str, *, allowed: Allowed | None = None, seed: int | None = None, ip_version: int | None = None
) -> Variation:
    """``FIELD=RANGE[:inc|random]`` -> Variation, checked (UsageError, one line).

    RANGE is ``LOW-HIGH`` or one value: ports ``1000-1999``, addresses ``198.19.0.2-198.19.0.200`` or
    ``2001:2:0:2::2-2001:2:0:2::ff``, ``flow-label`` 0-1048575, ``vlan`` 1-4094. It must lie inside
    ``allowed`` (default: the field's whole range; for addresses the benchmarking block of their
    version). ``random`` uses ``seed`` (0 to 2**63-1), or a fresh one recorded in the Variation.
    ``ip_version`` (4 or 6), when given, must be the addresses' version; ``flow-label`` needs 6.
    """
    usage = "use FIELD=RANGE[:inc|random], e.g. sport=1000-1999:random"
    require(isinstance(text, str) and "=" in text, f"--vary {text!r} has no '='; {usage}")
    name, _, rest = text.partition("=")
    name = name.strip().lower()
    spec = FIELDS.get(name)
    require(spec is not None, f"--vary field {name!r} is not one of {', '.join(FIELDS)}")
    assert spec is not None
    range_text, mode = rest, "inc"
    head, colon, tail = rest.rpartition(":")
    if colon and tail.strip().lower() in MODES:
        range_text, mode = head, tail.strip().lower()
    elif colon:  # an IPv6 range ends in a hex group; anything else after the last ':' meant to be a mode
        require(
            spec.address and _HEX.fullmatch(tail.strip()) is not None,
            f"--vary {name}: mode {tail!r} is not inc or random",
        )
    require(range_text.strip() != "", f"--vary {name}: the range is empty; {usage}")
    low, high, version = _range(spec, range_text)
    require(
        ip_version is None or version in (None, ip_version),
        f"--vary {name}: {range_text} is IPv{version} but this run is IPv{ip_version}",
    )
    require(
        name != "flow-label" or ip_version in (None, 6), f"--vary flow-label needs IPv6 (this run is IPv{ip_version})"
    )
    allowed_low, allowed_high, allowed_version = _allowed(spec, allowed, version)
    shown = f"{_show(allowed_low, allowed_version)}-{_show(allowed_high, allowed_version)}"
    require(
        allowed_version == version and allowed_low <= low and high <= allowed_high,
        f"--vary {name}: range {range_text.strip()} is outside the allowed {shown}",
    )
    require(high - low < MAX_SPAN, f"--vary {name}: range {range_text.strip()} holds more than 2**64 values")
    if mode == "random":
        seed = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
        require(isinstance(seed, int) and 0 <= seed <= MAX_SEED, f"seed {seed!r} is out of range 0-{MAX_SEED}")
    return Variation(name, low, high, mode, seed if mode == "random" else None, version)


def parse_varies(
    texts: Iterable[str],
    *,
    allowed: Mapping[str, Allowed] | None = None,
    seed: int | None = None,
    ip_version: int | None = None,
) -> dict[str, Variation]:
    """Several ``--vary`` options, by field; UsageError for a field given twice or addresses of two versions."""
    chosen: dict[str, Variation] = {}
    fresh = secrets.randbelow(MAX_SEED + 1) if seed is None else seed  # one seed for the run, recorded
    for text in texts:
        variation = parse_vary(
            text, allowed=(allowed or {}).get(text.partition("=")[0].strip().lower()), seed=fresh, ip_version=ip_version
        )
        require(variation.field not in chosen, f"--vary {variation.field} is given twice")
        chosen[variation.field] = variation
        versions = {v.version for v in chosen.values() if v.version is not None}
        require(len(versions) <= 1, "--vary src-ip and dst-ip must be of one IP version")
        require(
            not ("flow-label" in chosen and 4 in versions), "--vary flow-label needs IPv6 addresses (IPv4's are given)"
        )
    return chosen
