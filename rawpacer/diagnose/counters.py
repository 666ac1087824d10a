"""The kernel's own counters in one namespace, read at one moment, and what moved between two reads.

``snapshot()`` reads this thread's namespace (``/proc/thread-self/net`` follows the thread, unlike
``/proc/net`` which follows the process): IPv4/UDP MIB counters (``snmp``, ``netstat``), the IPv6
ones (``snmp6``, when IPv6 exists), the route cache's martian counters (``stat/rt_cache``,
machine-wide per CPU), the backlog drops of ``softnet_stat`` (machine-wide), every interface's
``rtnl_link_stats64`` (over netlink, for ``rx_otherhost_dropped``) and the raw-path sysctls.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field

from rawpacer.sandbox.topology import RAW_PATH_SYSCTLS, Topology, read_sysctl

PROC = "/proc/thread-self/net"
LINK_STATS = [
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "multicast",
    "collisions",
    "rx_length_errors",
    "rx_over_errors",
    "rx_crc_errors",
    "rx_frame_errors",
    "rx_fifo_errors",
    "rx_missed_errors",
    "tx_aborted_errors",
    "tx_carrier_errors",
    "tx_fifo_errors",
    "tx_heartbeat_errors",
    "tx_window_errors",
    "rx_compressed",
    "tx_compressed",
    "rx_nohandler",
    "rx_otherhost_dropped",
]
"""struct rtnl_link_stats64, in order (rx_otherhost_dropped since Linux 5.19)."""

_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_NLA = struct.Struct("=HH")
RTM_NEWLINK, RTM_GETLINK, NLMSG_DONE, NLMSG_ERROR = 16, 18, 3, 2
IFLA_IFNAME, IFLA_STATS64 = 3, 23
NLM_F_REQUEST_DUMP = 0x1 | 0x300
SNMP6_SECTIONS = ("UdpLite6", "Icmp6", "Udp6", "Ip6")
"""Prefixes of /proc/net/snmp6's names, longest first (``Udp6NoPorts`` is ``Udp6.NoPorts``)."""


@dataclass(frozen=True)
class Counters:
    """One namespace's counters at one moment; ``mib`` keys look like ``"Udp.NoPorts"``."""

    mib: dict[str, int]
    martian: dict[str, int]
    links: dict[str, dict[str, int]]
    sysctls: dict[str, str] = field(default_factory=dict)


def _pairs(path: str) -> dict[str, int]:
    """``Section: names`` / ``Section: values`` line pairs (snmp, netstat) as ``Section.Name``."""
    out: dict[str, int] = {}
    with open(path) as handle:
        lines = handle.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        section, _, keys = names.partition(":")
        for key, value in zip(keys.split(), values.partition(":")[2].split()):
            out[f"{section}.{key}"] = int(value)
    return out


def _rt_cache() -> dict[str, int]:
    """Per-CPU rows of hex counters summed; only the martian ones are kept."""
    with open(f"{PROC}/stat/rt_cache") as handle:
        header, *rows = handle.read().splitlines()
    names = header.split()
    totals = [sum(int(row.split()[i], 16) for row in rows) for i in range(len(names))]
    return {n: t for n, t in zip(names, totals) if n.startswith("in_martian")}


def _nlas(data: bytes, offset: int, end: int) -> dict[int, bytes]:
    attrs = {}
    while offset + _NLA.size <= end:
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size:
            break
        attrs[kind & 0x3FFF] = data[offset + _NLA.size : offset + length]
        offset += (length + 3) & ~3
    return attrs


def link_stats() -> dict[str, dict[str, int]]:
    """Every interface of this thread's namespace: its rtnl_link_stats64 counters by name."""
    links: dict[str, dict[str, int]] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        body = _IFINFO.pack(0, 0, 0, 0, 0)
        sock.send(_NLMSG.pack(_NLMSG.size + len(body), RTM_GETLINK, NLM_F_REQUEST_DUMP, 1, 0) + body)
        while True:
            data = sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind, _, _, _ = _NLMSG.unpack_from(data, offset)
                if kind in (NLMSG_DONE, NLMSG_ERROR) or length < _NLMSG.size:
                    return links
                if kind == RTM_NEWLINK:
                    attrs = _nlas(data, offset + _NLMSG.size + _IFINFO.size, offset + length)
                    name = attrs.get(IFLA_IFNAME, b"?").rstrip(b"\0").decode()
                    raw = attrs.get(IFLA_STATS64, b"")
                    values = struct.unpack_from(f"={len(raw) // 8}Q", raw)
                    links[name] = dict(zip(LINK_STATS, values))
                offset += (length + 3) & ~3


def _snmp6() -> dict[str, int]:
    """``Ip6InReceives 5`` lines as ``Ip6.InReceives``; empty where the kernel has no IPv6."""
    try:
        with open(f"{PROC}/snmp6") as handle:
            rows = [line.split() for line in handle]
    except FileNotFoundError:
        return {}
    out = {}
    for name, value in (row for row in rows if len(row) == 2):
        for section in SNMP6_SECTIONS:
            if name.startswith(section):
                out[f"{section}.{name[len(section) :]}"] = int(value)
                break
    return out


def _softnet_dropped() -> int:
    """Frames dropped because a CPU's input backlog was full (netdev_max_backlog), all CPUs summed:
    the second column of ``/proc/net/softnet_stat`` (machine-wide, not per namespace)."""
    with open(f"{PROC}/softnet_stat") as handle:
        return sum(int(line.split()[1], 16) for line in handle if line.strip())


def snapshot() -> Counters:
    """The counters of the namespace this thread is in."""
    mib = _pairs(f"{PROC}/snmp")
    mib.update(_pairs(f"{PROC}/netstat"))
    mib.update(_snmp6())
    mib["Softnet.Dropped"] = _softnet_dropped()
    sysctls = {key: read_sysctl(key) for key in RAW_PATH_SYSCTLS if os.path.exists(f"/proc/sys/{key}")}
    return Counters(mib, _rt_cache(), link_stats(), sysctls)


def snapshot_of(topo: Topology, side: str = "reader") -> Counters:
    """The counters of one side of a sandbox (the readers' by default)."""
    with topo.enter(side):
        return snapshot()


def delta(before: Counters, after: Counters) -> dict[str, int]:
    """Every counter that moved: MIB names as they are, ``rt_cache.*`` and ``link.IF.*`` prefixed."""
    pairs = [(after.mib, before.mib, ""), (after.martian, before.martian, "rt_cache.")]
    pairs += [(stats, before.links.get(name, {}), f"link.{name}.") for name, stats in after.links.items()]
    moved = {}
    for now, then, prefix in pairs:
        for key, value in now.items():
            change = value - then.get(key, 0)
            if change:
                moved[prefix + key] = change
    return moved
