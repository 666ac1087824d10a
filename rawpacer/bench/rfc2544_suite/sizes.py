"""RFC 2544 frame sizes and the UDP payload each one carries on ``lo`` or veth.

RFC 2544 (section 9.1) and RFC 5180 (section 5.1.1) count an Ethernet frame from the destination
MAC to the 4-byte FCS inclusive. Linux hands ``lo`` and veth frames without an FCS, so a frame of
``size`` bytes is sent as ``size - 4`` bytes: 14 (Ethernet) + 20 (IPv4) or 40 (IPv6) + 8 (UDP)
+ payload. A 64-byte frame therefore carries 18 bytes of UDP payload over IPv4 (64 - 4 - 14 - 20 - 8).

A row may also be a size mix (``imix`` or ``64:7,594:4,1518:1``, ``rawpacer.traffic.sizes``): its trials
send the mix's frame pool at the trial's frames/s, and its Mbit/s count the mix's mean frame (RFC 6985).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from rawpacer.errors import require
from rawpacer.headers import ETH_HLEN, IPV4_HLEN, IPV6_HLEN, UDP_HLEN
from rawpacer.headers.fit import check_mtu
from rawpacer.limits import MAX_UDP_PAYLOAD, MAX_UDP_PAYLOAD_V6, MIN_MESSAGE_SIZE
from rawpacer.traffic.sizes import NAMED_MIXES, SizeMix

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
    mix: SizeMix | None = None
    """A size mix's row: ``size`` and ``payload_bytes`` are then its largest frame's (what the readers
    and the writer must hold), and its trials send the mix's frame pool."""

    @classmethod
    def of(cls, size: int, *, ipv6: bool = False, mtu: int | None = None) -> FrameSize:
        """The frame size ``size`` (checked as ``payload_for`` does)."""
        return cls(size, payload_for(size, ipv6=ipv6, mtu=mtu), ipv6)

    @classmethod
    def of_mix(cls, mix: SizeMix, *, ipv6: bool = False, mtu: int | None = None) -> FrameSize:
        """The row of a size mix, every size in it checked as ``payload_for`` does."""
        for size in mix.sizes:
            payload_for(size, ipv6=ipv6, mtu=mtu)
        largest = max(mix.sizes)
        return cls(largest, payload_for(largest, ipv6=ipv6, mtu=mtu), ipv6, mix)

    @property
    def label(self) -> str:
        """How tables and the JSON name the row: ``64``, ``imix`` or the mix (``64:7,594:4``)."""
        if self.mix is None:
            return str(self.size)
        return mix_label(self.mix)

    @property
    def mean_frame(self) -> Fraction:
        """The mean frame size (FCS in, weighted): ``size`` for a fixed size, 362.0 for the simple IMIX."""
        if self.mix is None:
            return Fraction(self.size)
        return Fraction(sum(s * w for s, w in zip(self.mix.sizes, self.mix.weights)), self.mix.period)

    @property
    def wire_bytes(self) -> int:
        """Bytes the kernel moves on lo or veth for this frame: the counted size without the FCS."""
        return self.size - FCS_LEN

    @property
    def ip_bytes(self) -> int:
        """The IP packet's length: what the link MTU limits."""
        return self.size - FCS_LEN - ETH_HLEN


def mix_label(mix: SizeMix) -> str:
    """A mix's name (``imix``) when it is a named one, else its ``SIZE:WEIGHT,...`` notation (RFC 6985)."""
    pairs = tuple(zip(mix.sizes, mix.weights))
    return next((name for name, named in NAMED_MIXES.items() if named == pairs), str(mix))


def default_sizes(ipv6: bool = False) -> tuple[int, ...]:
    """RFC 2544's sizes for IPv4, RFC 5180's for IPv6."""
    return RFC5180_SIZES if ipv6 else RFC2544_SIZES


def frame_sizes(sizes: Iterable[int | SizeMix], *, ipv6: bool = False, mtu: int | None = None) -> tuple[FrameSize, ...]:
    """Each size (or size mix) as a FrameSize, in the order given; a size or mix named twice is refused."""
    frames = tuple(
        FrameSize.of_mix(s, ipv6=ipv6, mtu=mtu) if isinstance(s, SizeMix) else FrameSize.of(s, ipv6=ipv6, mtu=mtu)
        for s in sizes
    )
    labels = [f.label for f in frames]
    for label in labels:
        require(labels.count(label) == 1, f"frame size {label} is named twice")
    return frames


def mapping_table(sizes: Iterable[int] = RFC2544_SIZES, *, ipv6: bool = False) -> list[tuple[int, int, int, int]]:
    """Rows of (frame size, bytes on lo, IP packet bytes, UDP payload): the table docs/rfc2544.md shows."""
    return [(f.size, f.wire_bytes, f.ip_bytes, f.payload_bytes) for f in frame_sizes(sizes, ipv6=ipv6)]
