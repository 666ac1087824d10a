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
    """Where one fan-out goes: the readers' address and ports, seen from the writer's side."""

    src_ip: str
    dst_ip: str
    ports: tuple[int, ...]
    link: Link
    sport: int = DEFAULT_SPORT
