"""RFC 2544 frame sizes and the UDP payload each one carries on ``lo`` or veth.

RFC 2544 (section 9.1) and RFC 5180 (section 5.1.1) count an Ethernet frame from the destination
MAC to the 4-byte FCS inclusive. Linux hands ``lo`` and veth frames without an FCS, so a frame of
``size`` bytes is sent as ``size - 4`` bytes: 14 (Ethernet) + 20 (IPv4) or 40 (IPv6) + 8 (UDP)
+ payload. A 64-byte frame therefore carries 18 bytes of UDP payload over IPv4 (64 - 4 - 14 - 20 - 8).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rawpacer.errors import require
from rawpacer.headers import ETH_HLEN, IPV4_HLEN, IPV6_HLEN, UDP_HLEN
from rawpacer.headers.fit import check_mtu
from rawpacer.limits import MAX_UDP_PAYLOAD, MAX_UDP_PAYLOAD_V6, MIN_MESSAGE_SIZE

FCS_LEN = 4
"""The Ethernet frame check sequence: counted in RFC 2544's sizes, absent on lo and veth."""


RFC2544_SIZES = (64, 128, 256, 512, 1024, 1280, 1518)
"""RFC 2544, section 9.1: the frame sizes to use on Ethernet (FCS included)."""

RFC5180_SIZES = (78, 128, 256, 512, 1024, 1280, 1518)
"""RFC 5180, section 5.1.1, for IPv6: RFC 2544's list with 64 raised to 78 (a 64-byte frame cannot
hold Ethernet, IPv6 and UDP headers); its jumbo sizes (1522 to 9216) may be named with ``--sizes``."""


def overhead(ipv6: bool = False) -> int:
    """Bytes of a counted frame that are not UDP payload: FCS, Ethernet, IP and UDP headers (46 or 66)."""
    return FCS_LEN + ETH_HLEN + (IPV6_HLEN if ipv6 else IPV4_HLEN) + UDP_HLEN


def size_range(ipv6: bool = False, mtu: int | None = None) -> tuple[int, int]:
    """The smallest and largest frame sizes allowed: at least one payload byte, within the UDP and MTU limits."""
    low = overhead(ipv6) + MIN_MESSAGE_SIZE
    high = overhead(ipv6) + (MAX_UDP_PAYLOAD_V6 if ipv6 else MAX_UDP_PAYLOAD)
    if mtu is not None:
        high = min(high, FCS_LEN + ETH_HLEN + check_mtu(mtu))
    return low, high


def payload_for(size: int, *, ipv6: bool = False, mtu: int | None = None) -> int:
    """UDP payload bytes of a counted frame of ``size`` bytes; UsageError if the headers or the MTU forbid it."""
    low, high = size_range(ipv6, mtu)
    family = "IPv6" if ipv6 else "IPv4"
    require(
        isinstance(size, int) and not isinstance(size, bool),
        f"frame size {size!r} is not an integer (allowed: {low}-{high})",
    )
    require(
        size >= low,
        f"frame size {size} cannot hold FCS+Ethernet+{family}+UDP ({overhead(ipv6)} bytes) and a payload; "
        f"allowed: {low}-{high}",
    )
    limit = "" if mtu is None else f" at MTU {mtu}"
    require(size <= high, f"frame size {size} is too large{limit} for one {family} UDP datagram; allowed: {low}-{high}")
    return size - overhead(ipv6)


def size_for(payload: int, *, ipv6: bool = False) -> int:
    """The counted frame size (FCS included) of a datagram with ``payload`` UDP bytes: ``payload_for``'s inverse."""
    return payload + overhead(ipv6)


@dataclass(frozen=True)
class FrameSize:
    """One frame size of a run: as RFC 2544 counts it, and the UDP payload that makes it on lo or veth."""

    size: int
    payload_bytes: int
    ipv6: bool = False

    @classmethod
    def of(cls, size: int, *, ipv6: bool = False, mtu: int | None = None) -> FrameSize:
        """The frame size ``size`` (checked as ``payload_for`` does)."""
        return cls(size, payload_for(size, ipv6=ipv6, mtu=mtu), ipv6)

    @property
    def wire_bytes(self) -> int:
        """Bytes the kernel moves on lo or veth for this frame: the counted size without the FCS."""
        return self.size - FCS_LEN

    @property
    def ip_bytes(self) -> int:
        """The IP packet's length: what the link MTU limits."""
        return self.size - FCS_LEN - ETH_HLEN


def default_sizes(ipv6: bool = False) -> tuple[int, ...]:
    """RFC 2544's sizes for IPv4, RFC 5180's for IPv6."""
    return RFC5180_SIZES if ipv6 else RFC2544_SIZES


def frame_sizes(sizes: Iterable[int], *, ipv6: bool = False, mtu: int | None = None) -> tuple[FrameSize, ...]:
    """Each size as a FrameSize, in the order given; a size named twice is refused."""
    chosen = tuple(sizes)
    for size in chosen:
        require(chosen.count(size) == 1, f"frame size {size} is named twice")
    return tuple(FrameSize.of(size, ipv6=ipv6, mtu=mtu) for size in chosen)


def mapping_table(sizes: Iterable[int] = RFC2544_SIZES, *, ipv6: bool = False) -> list[tuple[int, int, int, int]]:
    """Rows of (frame size, bytes on lo, IP packet bytes, UDP payload): the table docs/rfc2544.md shows."""
    return [(f.size, f.wire_bytes, f.ip_bytes, f.payload_bytes) for f in frame_sizes(sizes, ipv6=ipv6)]
