"""Two ports of real hardware: send out one interface, read on another's address, a DUT between.

For a device under test that is a real box cabled to two NIC ports of this host (RFC 2544's tester
with a send port and a receive port). Nothing is created: the run uses the current namespace's
``tx`` and ``rx`` interfaces as they are, and changes one thing on them, said in the warning and
undone on exit: ``accept_local`` on ``rx`` (IPv4), because the frames' source address is ``tx``'s,
an address of this host, and without it the kernel drops them as martians on arrival
(fib_validate_source; Documentation/networking/ip-sysctl.rst, accept_local).
Raw frames go to the next hop's MAC: ``next_hop_mac`` if given, else the one neighbour the kernel
knows on ``tx`` (the DUT's port, once it has been reached: ``ping`` it or pin it with ``ip neigh``).
"""

from __future__ import annotations

import socket
import warnings
from dataclasses import dataclass

from pyroute2 import IPRoute

from rawpacer.errors import require
from rawpacer.headers.addresses import parse_mac
from rawpacer.sandbox.topology import Topology, read_sysctl, write_sysctls

IFF_UP = 0x1
NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80
"""Neighbour states with a usable MAC: REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT (linux/neighbour.h)."""


@dataclass(frozen=True)
class PortFacts:
    """One interface of the current namespace: index, MTU, MAC and its first address of an IP version."""

    ifname: str
    index: int
    mtu: int
    mac: str
    address: str


def check_port(option: str, ifname: str, ip_version: int) -> PortFacts:
    """``ifname`` exists here, is up and has an IPv4/IPv6 global address; UsageError naming the option otherwise."""
    family = socket.AF_INET if ip_version == 4 else socket.AF_INET6
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        require(bool(found), f"{option} {ifname!r}: no such interface in this namespace")
        link = ipr.get_links(found[0])[0]
        require(
            bool(link["flags"] & IFF_UP), f"{option} {ifname!r} is down; bring it up first (ip link set {ifname} up)"
        )
        addresses = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=found[0], family=family) if a["scope"] == 0]
    require(bool(addresses), f"{option} {ifname!r} has no IPv{ip_version} address; rawpacer does not assign one")
    return PortFacts(ifname, found[0], link.get_attr("IFLA_MTU"), link.get_attr("IFLA_ADDRESS"), addresses[0])


def next_hop_mac(tx: PortFacts, given: str | None) -> str:
    """The MAC raw frames leaving ``tx`` are addressed to: ``given``, or the one usable neighbour on ``tx``."""
    if given is not None:
        return parse_mac("next hop mac", given).hex(":")
    family = socket.AF_INET if ":" not in tx.address else socket.AF_INET6
    with IPRoute() as ipr:
        macs = {
            mac
            for n in ipr.get_neighbours(ifindex=tx.index, family=family)
            if n["state"] & NUD_USABLE and (mac := n.get_attr("NDA_LLADDR")) and not int(mac[:2], 16) & 1
        }  # unicast MACs only: the low bit of the first octet marks a group address (IEEE 802)
    require(
        len(macs) == 1,
        f"--tx-iface {tx.ifname}: the kernel knows {len(macs)} neighbour MACs on it, so the next hop is not "
        "certain; reach the DUT's port once (ping it) or give --next-hop-mac",
    )
    return str(macs.pop())


class Ports:
    """Context manager: ``tx`` and ``rx`` of the current namespace as a Topology of kind ``ports``."""

    def __init__(self, tx: str, rx: str, *, ip_version: int = 4, next_hop: str | None = None) -> None:
        require(tx != rx, f"--tx-iface and --rx-iface both name {tx!r}; give two interfaces")
        self.tx, self.rx, self.ip_version, self.next_hop = tx, rx, ip_version, next_hop
        self._restore: dict[str, str] = {}

    def check(self) -> tuple[PortFacts, PortFacts, str]:
        """Both interfaces and the next hop's MAC, checked (UsageError, one line) before anything is sent."""
        tx = check_port("--tx-iface", self.tx, self.ip_version)
        rx = check_port("--rx-iface", self.rx, self.ip_version)
        return tx, rx, next_hop_mac(tx, self.next_hop)

    def __enter__(self) -> Topology:
        tx, rx, mac = self.check()
        key = f"net/ipv4/conf/{rx.ifname}/accept_local"
        changes = ""
        if self.ip_version == 4 and read_sysctl(key) != "1":
            self._restore[key] = read_sysctl(key)
            write_sysctls({key: "1"})
            changes = f"; accept_local set on {rx.ifname} for the run (restored after)"
        warnings.warn(
            f"sending out {tx.ifname} ({tx.address}) to {rx.address} on {rx.ifname} via next hop {mac}, "
            f"outside rawpacer's namespaces{changes}",
            stacklevel=2,
        )
        return Topology(
            "ports",
            "",
            "",
            tx.ifname,
            rx.ifname,
            tx.address,
            rx.address,
            min(tx.mtu, rx.mtu),
            ip_version=self.ip_version,
            next_hop_mac=mac,
        )

    def __exit__(self, *exc: object) -> None:
        write_sysctls(self._restore)
        self._restore = {}
