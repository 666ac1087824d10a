"""Why frames left but readers got nothing, from the kernel's own counters in the reader namespace.

``snapshot()`` reads this thread's namespace (``/proc/thread-self/net`` follows the thread, unlike
``/proc/net`` which follows the process): IP/UDP MIB counters (``snmp``, ``netstat``), the
route cache's martian counters (``stat/rt_cache``, machine-wide per CPU), every interface's
``rtnl_link_stats64`` (over netlink, for ``rx_otherhost_dropped``) and the raw-path sysctls.
``explain(before, after)`` turns the difference into sentences naming the cause.
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


def snapshot() -> Counters:
    """The counters of the namespace this thread is in."""
    mib = _pairs(f"{PROC}/snmp")
    mib.update(_pairs(f"{PROC}/netstat"))
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


def _link_sum(moved: dict[str, int], stat: str) -> int:
    return sum(v for k, v in moved.items() if k.startswith("link.") and k.endswith("." + stat))


def findings(before: Counters, after: Counters) -> list[str]:
    """One sentence per cause the counters show, most specific first (empty when nothing was dropped)."""
    moved = delta(before, after)
    get = moved.get
    found = []
    if get("Ip.InCsumErrors", 0) or get("Ip.InHdrErrors", 0):
        found.append(
            f"IP header checksum errors: {get('Ip.InCsumErrors', 0) or get('Ip.InHdrErrors', 0)} "
            "datagram(s) with a bad IPv4 header were dropped (Ip InCsumErrors/InHdrErrors)"
        )
    if get("Udp.InCsumErrors", 0):
        found.append(
            f"UDP checksum errors: {get('Udp.InCsumErrors')} datagram(s) failed the UDP checksum "
            "(Udp InCsumErrors); the checksum must cover the pseudo-header, UDP header and payload"
        )
    if get("Udp.NoPorts", 0):
        found.append(
            f"no socket on the port: {get('Udp.NoPorts')} datagram(s) went to a UDP port nobody "
            "listens on (Udp NoPorts)"
        )
    if get("Udp.RcvbufErrors", 0):
        found.append(
            f"receive buffers full: {get('Udp.RcvbufErrors')} datagram(s) dropped because a reader's "
            "socket buffer was full (Udp RcvbufErrors)"
        )
    otherhost = _link_sum(moved, "rx_otherhost_dropped")
    rx = _link_sum(moved, "rx_packets")
    ip_in = get("Ip.InReceives", 0)
    if otherhost or (rx and not ip_in):
        count = otherhost or rx
        found.append(
            f"wrong destination MAC: {count} frame(s) arrived on the interface (rx) but never reached "
            "IP: their destination MAC is not the receiving interface's, so the kernel marked them "
            "PACKET_OTHERHOST and dropped them"
        )
    unaccounted = ip_in - get("Ip.InDelivers", 0) - get("Ip.InHdrErrors", 0) - get("Ip.InAddrErrors", 0)
    unaccounted -= get("Ip.ReasmReqds", 0) - get("Ip.ReasmOKs", 0)
    martians = get("rt_cache.in_martian_src", 0) + get("rt_cache.in_martian_dst", 0)
    local_off = [k for k, v in after.sysctls.items() if v == "0"]
    if unaccounted > 0 and (martians or local_off):
        names = ", ".join(k.replace("/", ".") for k in local_off) or "none"
        found.append(
            f"martian drop: {unaccounted} datagram(s) reached IP but were refused by routing "
            f"(rt_cache in_martian_src/dst +{martians}): a frame injected with a local source "
            "address is a martian unless the receiving namespace sets "
            "net.ipv4.conf.{all,lo}.accept_local=1 and route_localnet=1 (inside that namespace "
            f"only); off now: {names}"
        )
    if get("Ip.ReasmFails", 0) or get("Ip.ReasmTimeout", 0):
        found.append(
            f"fragment reassembly failed: {get('Ip.ReasmFails', 0)} (Ip ReasmFails/ReasmTimeout); "
            "a fragment was lost, overlapped or arrived too late"
        )
    if get("Ip.InAddrErrors", 0):
        found.append(
            f"wrong destination address: {get('Ip.InAddrErrors')} datagram(s) not for this host (Ip InAddrErrors)"
        )
    if not found and not rx and not ip_in:
        found.append("nothing arrived: no interface in the reader namespace received a frame")
    return found


def explain(before: Counters, after: Counters) -> str:
    """Why frames were lost between ``before`` and ``after``, as one or more sentences."""
    found = findings(before, after)
    return "; ".join(found) if found else "no drop counter moved: every datagram that arrived was delivered"
