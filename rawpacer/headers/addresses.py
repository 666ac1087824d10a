"""Check and convert the header fields a caller gives (ports, addresses, TTL, id, payload).

Every check raises ``UsageError`` (a ValueError) whose message names the field and the value,
e.g. ``dport 70000 is out of range 0-65535``. ``header_fields`` runs them all at once.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from rawpacer.errors import UsageError, require
from rawpacer.headers.checksum import BytesLike
from rawpacer.limits import DEFAULT_SPORT, MAX_PORT, MAX_UDP_PAYLOAD

DEFAULT_IP = "127.0.0.1"
DEFAULT_MAC = "00:00:00:00:00:00"
DEFAULT_TTL = 64

__all__ = ["DEFAULT_SPORT", "MAX_UDP_PAYLOAD"]  # re-exported from rawpacer.limits (their one home)

_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}\Z")


def check_int(field: str, value: object, low: int, high: int) -> int:
    """``value`` as an int in low..high; UsageError naming the field otherwise (bools refused)."""
    require(
        isinstance(value, int) and not isinstance(value, bool),
        f"{field} {value!r} is not an integer (allowed: {low}-{high})",
    )
    require(low <= value <= high, f"{field} {value} is out of range {low}-{high}")
    return int(value)


def parse_port(field: str, value: object) -> int:
    """A UDP port 0..65535."""
    return check_int(field, value, 0, MAX_PORT)


def parse_mac(field: str, value: object) -> bytes:
    """The 6 bytes of a MAC written ``aa:bb:cc:dd:ee:ff``."""
    require(
        isinstance(value, str) and _MAC.match(value) is not None,
        f"{field} {value!r} is not a MAC address like 02:00:00:00:00:01",
    )
    return bytes.fromhex(value.replace(":", ""))


def parse_ipv4(field: str, value: object) -> bytes:
    """The 4 bytes of a dotted-quad IPv4 address (str or ipaddress.IPv4Address)."""
    if isinstance(value, ipaddress.IPv4Address):
        return value.packed
    if isinstance(value, str):
        try:
            return ipaddress.IPv4Address(value).packed
        except ValueError:
            pass
    raise UsageError(f"{field} {value!r} is not an IPv4 address like 198.18.0.1")


def check_payload(payload: object, limit: int | None = MAX_UDP_PAYLOAD) -> BytesLike:
    """``payload`` if it is bytes-like and at most ``limit`` bytes (None: any length); memoryviews
    are made flat byte views. On the stamping hot path: messages are only built on failure."""
    if isinstance(payload, memoryview):
        if not payload.c_contiguous:
            raise UsageError("payload memoryview is not contiguous")
        if payload.format != "B" or payload.ndim != 1:
            payload = payload.cast("B")
    elif not isinstance(payload, (bytes, bytearray)):
        raise UsageError(
            f"payload of type {type(payload).__name__} is not bytes-like (use bytes, bytearray or memoryview)"
        )
    if limit is not None and len(payload) > limit:
        raise UsageError(f"payload of {len(payload)} bytes is too long (allowed: 0-{limit})")
    return payload


@dataclass(frozen=True)
class HeaderFields:
    """Checked, packed header fields for one destination (what every builder starts from)."""

    dport: int
    sport: int
    src_ip: bytes
    dst_ip: bytes
    src_mac: bytes
    dst_mac: bytes
    ttl: int
    ip_id: int
    df: bool


def header_fields(
    dport: object,
    *,
    sport: object,
    src_ip: object,
    dst_ip: object,
    src_mac: object,
    dst_mac: object,
    ttl: object,
    ip_id: object,
    df: object,
) -> HeaderFields:
    """Check every field at once; UsageError for the first one that is not allowed."""
    require(isinstance(df, bool), f"df {df!r} is not a bool")
    return HeaderFields(
        dport=parse_port("dport", dport),
        sport=parse_port("sport", sport),
        src_ip=parse_ipv4("src_ip", src_ip),
        dst_ip=parse_ipv4("dst_ip", dst_ip),
        src_mac=parse_mac("src_mac", src_mac),
        dst_mac=parse_mac("dst_mac", dst_mac),
        ttl=check_int("ttl", ttl, 0, 255),
        ip_id=check_int("ip_id", ip_id, 0, 65535),
        df=bool(df),
    )
