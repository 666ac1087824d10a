"""Check and convert the header fields a caller gives (ports, addresses, TTL or hop limit, ids, VLAN tag).

Every check raises ``UsageError`` (a ValueError) whose message names the field and the value,
e.g. ``dport 70000 is out of range 0-65535``. ``header_fields`` runs them all at once; it picks the
IP version from the addresses and refuses the fields the other version has (``ttl``/``df`` are
IPv4's, ``hop_limit``/``flow_label``/``traffic_class`` IPv6's) rather than ignoring them. Ranges
come from the header tables (``ttl`` 0-255 because the field is 8 bits wide).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TypedDict

from rawpacer.errors import UsageError, require
from rawpacer.headers.checksum import BytesLike
from rawpacer.headers.family import V4, V6, Family, family_of
from rawpacer.headers.ipv4 import DEFAULT_TTL, IPV4
from rawpacer.headers.ipv6 import DEFAULT_HOP_LIMIT, IPV6
from rawpacer.headers.vlan import MAX_VLAN_ID, VLAN
from rawpacer.limits import DEFAULT_SPORT, MAX_PORT, MAX_UDP_PAYLOAD

DEFAULT_IP = "127.0.0.1"
DEFAULT_IP_V6 = "::1"
DEFAULT_MAC = "00:00:00:00:00:00"

__all__ = ["DEFAULT_SPORT", "DEFAULT_TTL", "MAX_UDP_PAYLOAD"]  # re-exported from their homes

_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}\Z")
_LOOPBACK = {V4: DEFAULT_IP, V6: DEFAULT_IP_V6}
_OTHER_FAMILY_HINTS = {
    "ttl": "; use hop_limit",
    "df": ": only the source fragments IPv6 packets (RFC 8200, section 4.5)",
    "ip_id": ": IPv6 carries an identification only in fragments (give it to build_fragments or fragments())",
    "hop_limit": "; use ttl",
}


def check_int(field: str, value: object, low: int, high: int, note: str = "") -> int:
    """``value`` as an int in low..high; UsageError naming the field otherwise (bools refused).

    ``note`` is appended to the allowed range in the message (e.g. why the range is what it is).
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise UsageError(f"{field} {value!r} is not an integer (allowed: {low}-{high}{note})")
    if not low <= value <= high:  # on hot paths: the message is only built on failure
        raise UsageError(f"{field} {value} is out of range {low}-{high}{note}")
    return int(value)


def check_bool(field: str, value: object) -> bool:
    """``value`` if it is a bool; UsageError naming the field otherwise."""
    require(isinstance(value, bool), f"{field} {value!r} is not a bool")
    return bool(value)


def parse_port(field: str, value: object) -> int:
    """A UDP port 0..65535."""
    return check_int(field, value, 0, MAX_PORT)


def parse_mac(field: str, value: object) -> bytes:
    """The 6 bytes of a MAC written ``aa:bb:cc:dd:ee:ff``."""
    if not isinstance(value, str) or _MAC.match(value) is None:
        raise UsageError(f"{field} {value!r} is not a MAC address like 02:00:00:00:00:01")
    return bytes.fromhex(value.replace(":", ""))


def _packed(value: object, kinds: tuple[type[ipaddress.IPv4Address | ipaddress.IPv6Address], ...]) -> bytes | None:
    for kind in kinds:
        if isinstance(value, kind):
            return value.packed
        if isinstance(value, str):
            try:
                return kind(value).packed
            except ValueError:
                continue
    return None


def parse_ipv4(field: str, value: object) -> bytes:
    """The 4 bytes of a dotted-quad IPv4 address (str or ipaddress.IPv4Address)."""
    packed = _packed(value, (ipaddress.IPv4Address,))
    if packed is None:
        raise UsageError(f"{field} {value!r} is not an IPv4 address like 198.18.0.1")
    return packed


def parse_ip(field: str, value: object) -> bytes:
    """The 4 or 16 bytes of an IPv4 or IPv6 address (str, ipaddress.IPv4Address or IPv6Address)."""
    packed = _packed(value, (ipaddress.IPv4Address, ipaddress.IPv6Address))
    if packed is None:
        raise UsageError(f"{field} {value!r} is not an IPv4 address like 198.18.0.1 or an IPv6 address like 2001:2::1")
    return packed


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
    """Checked, packed header fields for one destination (what every builder starts from).

    ``src_ip``/``dst_ip`` are 4 bytes (IPv4) or 16 (IPv6); ``ttl`` is IPv4's TTL or IPv6's hop
    limit (the same 8-bit field); ``ip_id`` is IPv4's identification, or for IPv6 the Fragment
    header's (used only when fragmenting); ``df`` is always False for IPv6. ``vlan`` is None for an
    untagged frame.
    """

    dport: int
    sport: int
    src_ip: bytes
    dst_ip: bytes
    src_mac: bytes
    dst_mac: bytes
    ttl: int
    ip_id: int
    df: bool
    traffic_class: int = 0
    flow_label: int = 0
    vlan: int | None = None
    vlan_priority: int = 0
    vlan_dei: bool = False

    @property
    def ip_version(self) -> int:
        """4 or 6, from the address length."""
        return family_of(self.src_ip).version

    @property
    def hop_limit(self) -> int:
        """IPv6's name for ``ttl``."""
        return self.ttl


class FieldArgs(TypedDict, total=False):
    """The keyword fields every builder takes (``build_frame``, ``build_packet``, ``build_fragments``,
    ``FrameTemplate``); see ``header_fields`` for the defaults and the rules."""

    sport: int
    src_ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None
    dst_ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None
    src_mac: str
    dst_mac: str
    ttl: int | None
    hop_limit: int | None
    flow_label: int | None
    traffic_class: int | None
    ip_id: int | None
    df: bool | None
    vlan: int | None
    vlan_priority: int | None
    vlan_dei: bool | None


def _addresses(src_ip: object, dst_ip: object) -> tuple[bytes, bytes, Family]:
    """Both addresses packed, of one family: a missing one is the loopback of the other's family."""
    src = parse_ip("src_ip", src_ip) if src_ip is not None else None
    dst = parse_ip("dst_ip", dst_ip) if dst_ip is not None else None
    known = src or dst
    fam = family_of(known) if known is not None else V4
    src = src if src is not None else parse_ip("src_ip", _LOOPBACK[fam])
    dst = dst if dst is not None else parse_ip("dst_ip", _LOOPBACK[fam])
    if len(src) != len(dst):
        raise UsageError(
            f"src_ip {src_ip!r} is {family_of(src).name} but dst_ip {dst_ip!r} is {family_of(dst).name} (use one family)"
        )
    return src, dst, fam


def _refuse(fam: Family, because: str, given: dict[str, object]) -> None:
    """UsageError for the first field of ``given`` that is not None: it belongs to the other family."""
    for name, value in given.items():
        if value is not None:
            other = V6 if fam is V4 else V4
            hint = _OTHER_FAMILY_HINTS.get(name, "")
            raise UsageError(f"{name} {value!r} is {other.name}-only and this packet is {fam.name} ({because}){hint}")


def _vlan(vlan: object, priority: object, dei: object, ethernet: bool) -> tuple[int | None, int, bool]:
    if vlan is None:
        for name, value in (("vlan_priority", priority), ("vlan_dei", dei)):
            require(value is None, f"{name} {value!r} needs a VLAN tag (give vlan=0-{MAX_VLAN_ID})")
        return None, 0, False
    require(ethernet, f"vlan {vlan!r} needs the Ethernet header (ethernet=True): the tag is part of it")
    return (
        check_int("vlan", vlan, 0, MAX_VLAN_ID, " (0: a priority tag)"),
        check_int("vlan_priority", 0 if priority is None else priority, 0, VLAN["priority"].max),
        check_bool("vlan_dei", False if dei is None else dei),
    )


def header_fields(
    dport: object,
    *,
    sport: object = DEFAULT_SPORT,
    src_ip: object = None,
    dst_ip: object = None,
    src_mac: object = DEFAULT_MAC,
    dst_mac: object = DEFAULT_MAC,
    ttl: object = None,
    hop_limit: object = None,
    flow_label: object = None,
    traffic_class: object = None,
    ip_id: object = None,
    df: object = None,
    vlan: object = None,
    vlan_priority: object = None,
    vlan_dei: object = None,
    ethernet: bool = True,
    fragments: bool = False,
) -> HeaderFields:
    """Check every field at once; UsageError for the first one that is not allowed.

    The IP version follows the addresses (both default to the loopback of the other's family, or
    127.0.0.1). IPv4 defaults: ttl 64, ip_id 0, df True (False when ``fragments``). IPv6 defaults:
    hop_limit 64, flow_label 0, traffic_class 0; an ``ip_id`` is taken only when ``fragments`` (it
    lives in IPv6's Fragment header). ``vlan`` (0-4094, 0 meaning a priority tag) adds an 802.1Q
    tag with ``vlan_priority`` (0-7) and ``vlan_dei``; MACs are checked but unused without the
    Ethernet header (``ethernet=False``).
    """
    src, dst, fam = _addresses(src_ip, dst_ip)
    because = next((f"{n} {v!r}" for n, v in (("src_ip", src_ip), ("dst_ip", dst_ip)) if v is not None), "by default")
    if fam is V4:
        _refuse(fam, because, {"hop_limit": hop_limit, "flow_label": flow_label, "traffic_class": traffic_class})
        ttl = check_int("ttl", DEFAULT_TTL if ttl is None else ttl, 0, IPV4["ttl"].max)
        df = check_bool("df", not fragments if df is None else df)
        traffic_class = flow_label = 0
    else:
        _refuse(fam, because, {"ttl": ttl, "df": df} | ({} if fragments else {"ip_id": ip_id}))
        ttl = check_int("hop_limit", DEFAULT_HOP_LIMIT if hop_limit is None else hop_limit, 0, IPV6["hop_limit"].max)
        flow_label = check_int("flow_label", 0 if flow_label is None else flow_label, 0, IPV6["flow_label"].max)
        traffic_class = check_int(
            "traffic_class", 0 if traffic_class is None else traffic_class, 0, IPV6["traffic_class"].max
        )
        df = False
    tag, priority, dei = _vlan(vlan, vlan_priority, vlan_dei, ethernet)
    return HeaderFields(
        dport=parse_port("dport", dport),
        sport=parse_port("sport", sport),
        src_ip=src,
        dst_ip=dst,
        src_mac=parse_mac("src_mac", src_mac),
        dst_mac=parse_mac("dst_mac", dst_mac),
        ttl=ttl,
        ip_id=check_int("ip_id", 0 if ip_id is None else ip_id, 0, fam.max_ip_id),
        df=df,
        traffic_class=traffic_class,
        flow_label=flow_label,
        vlan=tag,
        vlan_priority=priority,
        vlan_dei=dei,
    )
