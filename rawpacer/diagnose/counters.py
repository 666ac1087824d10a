"""The kernel's own counters in one namespace, read at one moment, and what moved between two reads.

``snapshot()`` reads this thread's namespace (``/proc/thread-self/net`` follows the thread, unlike
``/proc/net`` which follows the process): IPv4/UDP MIB counters (``snmp``, ``netstat``), the IPv6
ones (``snmp6``, when IPv6 exists), the route cache's martian counters (``stat/rt_cache``,
machine-wide per CPU), the backlog drops of ``softnet_stat`` (machine-wide), every interface's
``rtnl_link_stats64`` (over netlink, for ``rx_otherhost_dropped``) and the raw-path sysctls;
``snapshot_of`` adds the device under test's (rawpacer.dut.counters) when the sandbox has one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from rawpacer.dut import counters as dut_counters
from rawpacer.kernel.linkstats import link_stats
from rawpacer.kernel.mib import PROC, read_mib
from rawpacer.sandbox.topology import RAW_PATH_SYSCTLS, Topology, read_sysctl


@dataclass(frozen=True)
class Counters:
    """One namespace's counters at one moment; ``mib`` keys look like ``"Udp.NoPorts"``."""

    mib: dict[str, int]
    martian: dict[str, int]
    links: dict[str, dict[str, int]]
    sysctls: dict[str, str] = field(default_factory=dict)
    dut: dict[str, int] = field(default_factory=dict)
    """The device under test's counters (router topology), ``dut.``-prefixed (rawpacer.dut.counters)."""


def _rt_cache() -> dict[str, int]:
    """Per-CPU rows of hex counters summed; only the martian ones are kept."""
    with open(f"{PROC}/stat/rt_cache") as handle:
        header, *rows = handle.read().splitlines()
    names = header.split()
    totals = [sum(int(row.split()[i], 16) for row in rows) for i in range(len(names))]
    return {n: t for n, t in zip(names, totals) if n.startswith("in_martian")}


def _softnet_dropped() -> int:
    """Frames dropped because a CPU's input backlog was full (netdev_max_backlog), all CPUs summed:
    the second column of ``/proc/net/softnet_stat`` (machine-wide, not per namespace)."""
    with open(f"{PROC}/softnet_stat") as handle:
        return sum(int(line.split()[1], 16) for line in handle if line.strip())


def snapshot() -> Counters:
    """The counters of the namespace this thread is in."""
    mib = read_mib()
    mib["Softnet.Dropped"] = _softnet_dropped()
    sysctls = {key: read_sysctl(key) for key in RAW_PATH_SYSCTLS if os.path.exists(f"/proc/sys/{key}")}
    return Counters(mib, _rt_cache(), link_stats(), sysctls)


def snapshot_of(topo: Topology, side: str = "reader") -> Counters:
    """The counters of one side of a sandbox (the readers' by default), and, in a topology with a
    device under test (router), the DUT's too, so every loss between writer and readers is seen."""
    with topo.enter(side):
        counters = snapshot()
    if topo.dut_ports is not None:
        return replace(counters, dut=dut_counters.snapshot(*topo.dut_ports))
    return counters


def delta(before: Counters, after: Counters) -> dict[str, int]:
    """Every counter that moved: MIB names as they are, ``rt_cache.*`` and ``link.IF.*`` prefixed, the
    DUT's with their ``dut.`` names (its gauges left out)."""
    pairs = [(after.mib, before.mib, ""), (after.martian, before.martian, "rt_cache.")]
    pairs += [(stats, before.links.get(name, {}), f"link.{name}.") for name, stats in after.links.items()]
    moved = {}
    for now, then, prefix in pairs:
        for key, value in now.items():
            change = value - then.get(key, 0)
            if change:
                moved[prefix + key] = change
    moved.update(dut_counters.counts(before.dut, after.dut))
    return moved
