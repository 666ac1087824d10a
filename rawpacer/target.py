"""Where a fan-out goes: the link raw frames leave by and the readers' address and ports.

The sandbox produces these (read from the kernel, never assumed); writers consume them. They live
below both so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from rawpacer.limits import DEFAULT_SPORT


@dataclass(frozen=True)
class Link:
    """The writer-side interface raw frames leave by, as read from the kernel (never assumed)."""

    ifname: str
    ifindex: int
    mtu: int
    src_mac: str
    dst_mac: str


@dataclass(frozen=True)
class Target:
    """Where one fan-out goes: the readers' address and ports, seen from the writer's side, and the
    802.1Q tag writers that build the link header put on every frame (none when ``vlan`` is None)."""

    src_ip: str
    dst_ip: str
    ports: tuple[int, ...]
    link: Link
    sport: int = DEFAULT_SPORT
    vlan: int | None = None
    vlan_priority: int = 0

    @property
    def ip_version(self) -> int:
        """4 or 6, from the readers' address."""
        return 6 if ":" in self.dst_ip else 4
