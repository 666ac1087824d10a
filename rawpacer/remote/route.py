"""Where the writer sends a remote host's share: the route the kernel picks toward its address.

Standard writers just send to the address (the kernel routes). Raw writers that build the link
header leave by ``--tx-iface`` to the next hop's MAC from the kernel's neighbour table, the same
rule as two ports of real hardware (rawpacer.sandbox.ports.next_hop_mac): the SSH session that
started the agent has made that neighbour known.
"""

from __future__ import annotations

import socket

from pyroute2 import IPRoute

from rawpacer.errors import UsageError
from rawpacer.limits import DEFAULT_SPORT
from rawpacer.sandbox.ports import check_port, next_hop_mac
from rawpacer.sandbox.topology import link_info
from rawpacer.target import Link, Target

NO_MAC = "00:00:00:00:00:00"
"""The link's next hop for writers whose link header the kernel builds (never used by them)."""


def source_for(addr: str) -> str:
    """The local address the kernel's route toward ``addr`` picks (a connected UDP socket's name)."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((addr, 9))
        except OSError as exc:
            raise UsageError(f"no route to the remote address {addr} from here ({exc.strerror})") from None
        return str(probe.getsockname()[0])


def route_iface(addr: str) -> str:
    """The interface the kernel's route toward ``addr`` leaves by."""
    with IPRoute() as ipr:
        found = ipr.route("get", dst=addr)
        index = found[0].get_attr("RTA_OIF")
        return str(ipr.get_links(index)[0].get_attr("IFLA_IFNAME"))


def target(addr: str, ports: tuple[int, ...], tx_iface: str | None, next_hop: str | None, ip_version: int) -> Target:
    """The Target of one host's share: through ``tx_iface`` to the next hop's MAC when given, else the route's link."""
    if tx_iface is not None:
        tx = check_port("--tx-iface", tx_iface, ip_version)
        leaves = route_iface(addr)
        if leaves != tx.ifname:
            raise UsageError(
                f"--tx-iface {tx_iface}: the route to the remote address {addr} leaves by {leaves}; "
                "raw frames must leave the way the route does (give that interface, or hosts on one link)"
            )
        link = Link(tx.ifname, tx.index, tx.mtu, tx.mac, next_hop_mac(tx, next_hop))
        return Target(tx.address, addr, ports, link, DEFAULT_SPORT)
    ifname = route_iface(addr)
    index, mtu, mac = link_info(ifname)
    return Target(source_for(addr), addr, ports, Link(ifname, index, mtu, mac, NO_MAC), DEFAULT_SPORT)
