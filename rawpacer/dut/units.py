"""The quantities a --dut profile takes, parsed and range-checked once: bit rates and packet rates
(through --rate's own parser), byte sizes and times in tc's units, fractions and counts.

Each parser takes the whole spec and the field's name, so its one-line UsageError names both:
``--dut 'tbf:fast': rate 'fast' is not allowed; use a bit rate like 500kbit, 200mbit, 1gbit``.
Sizes follow tc(8): ``b`` bytes, ``kb``/``k`` KiB, ``mb``/``m`` MiB, ``gb``/``g`` GiB (iproute2's get_size).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from rawpacer.errors import UsageError
from rawpacer.limits import MAX_DROP_DECIMALS, MAX_DUT_BIT_RATE, MAX_DUT_PPS, MIN_DUT_BIT_RATE, MIN_DUT_PPS
from rawpacer.pacing.rate import Rate, parse_rate

BIT_UNITS = (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3), ("bit", 1))
"""tc's SI bit-rate units, largest first (tc(8): kbit is 1000 bits/s)."""

SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30}
"""tc's byte-size suffixes (binary, as iproute2's get_size reads them)."""

TIME_UNITS = {"us": 1, "usec": 1, "ms": 1_000, "msec": 1_000, "s": 1_000_000, "sec": 1_000_000}
"""tc's time suffixes, in microseconds (a unit is required)."""

_QUANTITY = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[a-z]*)$")


def format_bits(bits: int) -> str:
    """Bits/s in tc's largest exact unit: 200000000 -> ``200mbit``, 1500 -> ``1500bit``."""
    return next(f"{bits // size}{unit}" for unit, size in BIT_UNITS if bits % size == 0)


def format_time(micros: int) -> str:
    """Microseconds in tc's largest exact unit: 20000 -> ``20ms``, 1500 -> ``1500us``."""
    return next(
        f"{micros // size}{unit}" for unit, size in (("s", 10**6), ("ms", 10**3), ("us", 1)) if micros % size == 0
    )


BIT_RATE_RANGE = f"{format_bits(MIN_DUT_BIT_RATE)}-{format_bits(MAX_DUT_BIT_RATE)}"
PPS_RANGE = f"{MIN_DUT_PPS}-{MAX_DUT_PPS:,} packets/s"


def spec_error(spec: str, what: str) -> UsageError:
    """The one-line error every --dut check raises: the spec, then what is wrong and what is allowed."""
    return UsageError(f"--dut {spec!r}: {what}")


def _rate(spec: str, field: str, text: str, allowed: str) -> Rate:
    """--rate's parser on ``text`` (``/s`` read as pps); its error said again for this spec and field."""
    normal = text.strip().lower()
    normal = normal[:-2] + "pps" if normal.endswith("/s") else normal
    try:
        return parse_rate(normal)
    except UsageError:
        raise spec_error(spec, f"{field} {text!r} is not allowed; {allowed}") from None


def _bits(spec: str, field: str, text: str, rate: Rate) -> int:
    """A bit rate as whole bits/s, in range."""
    bits = rate.exact
    if bits.denominator != 1 or not MIN_DUT_BIT_RATE <= bits <= MAX_DUT_BIT_RATE:
        raise spec_error(spec, f"{field} {text!r} is out of range; allowed: whole bits/s, {BIT_RATE_RANGE}")
    return int(bits)


def parse_bit_rate(spec: str, field: str, text: str) -> int:
    """``500kbit``, ``200mbit``, ``1gbit`` -> bits/s (SI prefixes, as tc reads them)."""
    allowed = f"use a bit rate like 500kbit, 200mbit, 1gbit ({BIT_RATE_RANGE})"
    rate = _rate(spec, field, text, allowed)
    if rate.unit != "bit/s":
        raise spec_error(spec, f"{field} {text!r} is not allowed; {allowed}")
    return _bits(spec, field, text, rate)


def parse_police_rate(spec: str, field: str, text: str) -> tuple[int, str]:
    """``50kpps``, ``5000/s``, ``5000pps`` -> (packets/s, "pps"); ``100mbit`` -> (bits/s, "bit/s")."""
    allowed = f"use packets/s like 50kpps, 5000/s, 5000pps ({PPS_RANGE}) or a bit rate like 100mbit ({BIT_RATE_RANGE})"
    rate = _rate(spec, field, text, allowed)
    if rate.unit == "bit/s":
        return _bits(spec, field, text, rate), "bit/s"
    pps = rate.exact
    if pps.denominator != 1 or not MIN_DUT_PPS <= pps <= MAX_DUT_PPS:
        raise spec_error(spec, f"{field} {text!r} is out of range; allowed: whole {PPS_RANGE}")
    return int(pps), "pps"


def _quantity(spec: str, field: str, text: str, units: dict[str, int], allowed: str) -> Fraction:
    match = _QUANTITY.match(text.strip().lower())
    if not match or match["unit"] not in units:
        raise spec_error(spec, f"{field} {text!r} is not allowed; {allowed}")
    return Fraction(match["number"]) * units[match["unit"]]


def parse_size(spec: str, field: str, text: str, low: int, high: int) -> int:
    """``32kb``, ``1600``, ``1mb`` -> bytes, ``low``..``high``."""
    allowed = f"use bytes like 1600, 32kb, 1mb ({low:,}-{high:,} bytes)"
    return _whole(spec, field, text, SIZE_UNITS, allowed, low, high)


def parse_time_us(spec: str, field: str, text: str, low: int, high: int) -> int:
    """``20ms``, ``500us``, ``1s`` -> microseconds, ``low``..``high``."""
    allowed = f"use a time like 500us, 20ms, 1s ({format_time(low)}-{format_time(high)})"
    return _whole(spec, field, text, TIME_UNITS, allowed, low, high)


def _whole(spec: str, field: str, text: str, units: dict[str, int], allowed: str, low: int, high: int) -> int:
    """A quantity in ``units`` that must come to a whole number in ``low``..``high`` of the base unit."""
    value = _quantity(spec, field, text, units, allowed)
    if value.denominator != 1 or not low <= value <= high:
        raise spec_error(spec, f"{field} {text!r} is out of range; {allowed}")
    return int(value)


def parse_fraction(spec: str, field: str, text: str) -> tuple[int, int]:
    """``0.001`` -> (1, 1000): K of M = 10**decimals, 0 < K/M < 1, at most MAX_DROP_DECIMALS decimals."""
    allowed = f"use a fraction between 0 and 1 (both excluded) like 0.001 or 0.25, at most {MAX_DROP_DECIMALS} decimals"
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise spec_error(spec, f"{field} {text!r} is not allowed; {allowed}") from None
    if not value.is_finite() or not 0 < value < 1:
        raise spec_error(spec, f"{field} {text!r} is out of range; {allowed}")
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # for mypy: a finite Decimal's exponent is an int
    if -exponent > MAX_DROP_DECIMALS:
        raise spec_error(spec, f"{field} {text!r} has too many decimals; {allowed}")
    modulus = 10**-exponent
    return int(value * modulus), modulus


def parse_count(spec: str, field: str, text: str, low: int, high: int) -> int:
    """A whole number ``low``..``high`` (digits only)."""
    allowed = f"use a whole number {low:,}-{high:,}"
    if not text.strip().isdigit():
        raise spec_error(spec, f"{field} {text!r} is not allowed; {allowed}")
    count = int(text.strip())
    if not low <= count <= high:
        raise spec_error(spec, f"{field} {text!r} is out of range; {allowed}")
    return count
