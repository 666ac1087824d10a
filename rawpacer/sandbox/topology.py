"""The three topologies every rawpacer run lives in, built in namespaces it creates and removes.

- ``lo``: one private namespace; writer and readers share its loopback, addressed 198.18.0.1.
- ``veth``: a writer namespace and a reader namespace joined by a veth pair (rpw0 <-> rpr0),
  198.18.0.1 <-> 198.18.0.2 (RFC 2544's benchmarking range), MTU configurable.
- ``router``: writer, device under test (DUT) and readers, each in its own namespace, joined by two
  veth pairs (rpw0 <-> rpd0, rpd1 <-> rpr0) on two subnets, 198.18.0.0/24 and 198.19.0.0/24 as RFC 2544
  appendix C.2.2 lays out a tester's two ports; IPv4 and IPv6 forwarding on in the DUT's namespace only.
  ``egress_mtu`` gives the DUT's egress link a smaller MTU than its ingress.

With ``ip_version=6`` the addresses come from 2001:2::/48 (RFC 5180's benchmarking range) instead;
with ``vlan=ID`` (veth and router) the first receiving end (the readers', or the DUT's ingress)
accepts frames tagged with that 802.1Q id (vlan.py).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import ipaddress
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

from rawpacer.errors import RawpacerError, SandboxError, UsageError, require
from rawpacer.headers import MAX_VLAN_ID, MIN_VLAN_ID
from rawpacer.kernel import caps
from rawpacer.limits import DEFAULT_LINK_MTU, DEFAULT_SPORT, MAX_MTU, MIN_MTU, MIN_MTU_V6
from rawpacer.sandbox import netns
from rawpacer.sandbox.vlan import VlanFilter, jit_state
from rawpacer.target import Link, Target

KINDS = ("lo", "veth", "router")
SIDES = ("writer", "dut", "reader")
IP_VERSIONS = (4, 6)
WRITER_IP = "198.18.0.1"
READER_IP = "198.18.0.2"
PREFIXLEN = 24
WRITER_IP6 = "2001:2::1"
READER_IP6 = "2001:2::2"
PREFIXLEN6 = 64


@dataclass(frozen=True)
class Addressing:
    """One IP version's sandbox addresses: writer, reader, the veth prefix and lo's host prefix."""

    writer: str
    reader: str
    veth_prefixlen: int
    host_prefixlen: int


ADDRESSING = {
    4: Addressing(WRITER_IP, READER_IP, PREFIXLEN, 32),
    6: Addressing(WRITER_IP6, READER_IP6, PREFIXLEN6, 128),
}


@dataclass(frozen=True)
class RouterAddressing:
    """One IP version's router addresses: the writer's subnet (writer, DUT ingress) and the readers'
    (DUT egress, reader); each subnet has the prefix length ``prefixlen``."""

    writer: str
    dut_in: str
    dut_out: str
    reader: str
    prefixlen: int


ROUTER_ADDRESSING = {
    4: RouterAddressing("198.18.0.1", "198.18.0.254", "198.19.0.254", "198.19.0.2", PREFIXLEN),
    6: RouterAddressing("2001:2:0:1::1", "2001:2:0:1::fe", "2001:2:0:2::fe", "2001:2:0:2::2", PREFIXLEN6),
}
ROUTER_SYSCTLS = {"net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1"}
"""Forwarding, switched on in the DUT's namespace only (never on the host)."""

# Frames injected with AF_PACKET on lo carry a local source address and arrive on lo as if from
# outside: the kernel drops them as martians (counted in rt_cache in_martian_*) unless the
# receiving namespace allows local sources (accept_local) and loopback-range routing
# (route_localnet). They are set here, inside the sandbox's own namespace only, never on the host.
RAW_PATH_SYSCTLS = {
    f"net/ipv4/conf/{dev}/{key}": "1" for dev in ("all", "lo") for key in ("route_localnet", "accept_local")
}
# IPv6 is not used; disabling it keeps router solicitations and DAD out of the counters.
QUIET_SYSCTLS = {"net/ipv6/conf/all/disable_ipv6": "1", "net/ipv6/conf/default/disable_ipv6": "1"}
# IPv6 runs: IPv6 on, but quiet. No router solicitations or advertisements, no stateless
# autoconfiguration (RFC 4861, RFC 4862), no duplicate address detection on the addresses the kernel
# makes itself (link-local; RFC 4862 section 5.4); rawpacer's own addresses carry IFA_F_NODAD.
# "default" reaches the veth ends made later, "lo" the loopback that exists from the namespace's birth.
# disable_ipv6 comes last, so IPv6 starts on an already quiet configuration.
QUIET_IPV6_SYSCTLS = {
    f"net/ipv6/conf/{dev}/{key}": value
    for key, value in (
        ("accept_ra", "0"),
        ("autoconf", "0"),
        ("router_solicitations", "0"),
        ("accept_dad", "0"),
        ("dad_transmits", "0"),
        ("disable_ipv6", "0"),
    )
    for dev in ("all", "default", "lo")
}

_live: set[str] = set()
T = TypeVar("T")


def _remove_live() -> None:
    for name in list(_live):
        netns.remove(name)
        _live.discard(name)


atexit.register(_remove_live)


def off_event_loop(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn`` in a worker thread when this thread already runs an asyncio loop.

    pyroute2's synchronous IPRoute drives an asyncio loop of its own and refuses to start inside a
    running one, which is where every Jupyter cell runs. Only self-contained functions (ones that
    enter the namespaces they need) are wrapped: a new thread starts in its creator's namespace.
    """

    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args, **kwargs)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(fn, *args, **kwargs).result()

    return wrapper


def write_sysctls(values: dict[str, str]) -> None:
    """Write sysctls of the namespace this thread is in (``/proc/sys/net`` follows the thread)."""
    for key, value in values.items():
        with open(f"/proc/sys/{key}", "w") as handle:
            handle.write(value)


def read_sysctl(key: str) -> str:
    """One sysctl of the namespace this thread is in, e.g. ``net/ipv4/conf/lo/accept_local``."""
    with open(f"/proc/sys/{key}") as handle:
        return handle.read().strip()


def link_info(ifname: str) -> tuple[int, int, str]:
    """(ifindex, mtu, mac) of ``ifname`` in this thread's namespace, from netlink."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise SandboxError(f"interface {ifname!r} does not exist in this namespace")
        link = ipr.get_links(found[0])[0]
        return found[0], link.get_attr("IFLA_MTU"), link.get_attr("IFLA_ADDRESS")


@dataclass
class Topology:
    """A live sandbox: its namespaces, interfaces, addresses and MTU."""

    kind: str
    writer_ns: str
    reader_ns: str
    writer_if: str
    reader_if: str
    writer_ip: str
    reader_ip: str
    mtu: int
    run_id: str = ""
    namespaces: tuple[str, ...] = field(default=())
    ip_version: int = 4
    vlan_filter: VlanFilter | None = None
    dut_ns: str | None = None
    """The device under test's namespace (router only), with ``dut_in`` facing the writer and
    ``dut_out`` facing the readers; None on lo and veth."""
    dut_in: str | None = None
    dut_out: str | None = None
    egress_mtu: int | None = None
    """The MTU of the DUT's egress link (router only): ``mtu`` unless a smaller one was asked for."""
    next_hop_mac: str | None = None
    """The next hop's MAC when it is no interface of rawpacer's (``ports``: a real DUT's port)."""

    @property
    def vlan(self) -> int | None:
        """The 802.1Q VLAN id the readers' end accepts, or None when frames go untagged."""
        return None if self.vlan_filter is None else self.vlan_filter.vlan_id

    def enter(self, side: str) -> contextlib.AbstractContextManager[None]:
        """Run the body in the ``"writer"``, ``"reader"`` or (router) ``"dut"`` namespace (this thread)."""
        names = {"writer": self.writer_ns, "reader": self.reader_ns, "dut": self.dut_ns}
        name = names.get(side)
        if name is None:
            allowed = ", ".join(k for k, v in names.items() if v is not None)
            raise UsageError(f"side {side!r} is not allowed in the {self.kind} topology; use one of: {allowed}")
        return netns.entered(name) if name else contextlib.nullcontext()

    @property
    def dut_ports(self) -> tuple[str, str, str] | None:
        """(namespace, ingress, egress) of the device under test (router), or None: no DUT here."""
        if self.dut_ns is None or self.dut_in is None or self.dut_out is None:
            return None
        return self.dut_ns, self.dut_in, self.dut_out

    @property
    def outside(self) -> bool:
        """True for a topology of the user's own interfaces (``ports``): no namespace of rawpacer's."""
        return not self.writer_ns

    @property
    def allow_iface(self) -> str | None:
        """The interface raw writers may send on outside rawpacer's namespaces (``WriterOptions.allow_iface``):
        the user's tx port in a ``ports`` topology, none in a sandbox."""
        return self.writer_if if self.outside else None

    @property
    def next_hop(self) -> tuple[str, str]:
        """(side, interface) whose MAC raw frames are addressed to: the DUT's ingress, or the readers' end."""
        return ("dut", self.dut_in) if self.dut_in is not None else ("reader", self.reader_if)

    @off_event_loop
    def link(self) -> Link:
        """The writer-side link as the kernel reports it; dst_mac is the next hop's MAC (``next_hop``)."""
        with self.enter("writer"):
            ifindex, mtu, src_mac = link_info(self.writer_if)
        dst_mac = self.next_hop_mac
        if dst_mac is None:
            side, ifname = self.next_hop
            with self.enter(side):
                dst_mac = link_info(ifname)[2]
        return Link(self.writer_if, ifindex, mtu, src_mac, dst_mac)

    def target(self, ports: Sequence[int], sport: int = DEFAULT_SPORT, vlan_priority: int = 0) -> Target:
        """Where a fan-out to ``ports`` on the readers goes, seen from the writer; frames are tagged
        with the sandbox's VLAN id (and ``vlan_priority``) when it has one."""
        return Target(self.writer_ip, self.reader_ip, tuple(ports), self.link(), sport, self.vlan, vlan_priority)

    def sysctls(self, side: str = "reader") -> dict[str, str]:
        """The raw-path sysctls as set in one side's namespace (for doctor and diagnosis)."""
        with self.enter(side):
            return {key: read_sysctl(key) for key in RAW_PATH_SYSCTLS}


class Sandbox:
    """Context manager: build a topology in fresh namespaces; remove them on exit, error, Ctrl-C or SIGTERM
    (a SIGTERM nothing else handles unwinds like Ctrl-C while a sandbox lives: ``netns.terminate_as_interrupt``)."""

    def __init__(
        self,
        kind: str = "lo",
        *,
        mtu: int | None = None,
        ip_version: int = 4,
        vlan: int | None = None,
        egress_mtu: int | None = None,
    ) -> None:
        require(kind in KINDS, f"topology {kind!r} is not allowed; use one of: {', '.join(KINDS)}")
        require(
            ip_version in IP_VERSIONS and not isinstance(ip_version, bool),
            f"ip_version {ip_version!r} is not allowed; use 4 or 6",
        )
        for name, value in (("mtu", mtu), ("egress mtu", egress_mtu)):
            if value is not None:
                require(
                    isinstance(value, int) and MIN_MTU <= value <= MAX_MTU,
                    f"{name} {value!r} is out of range {MIN_MTU}-{MAX_MTU}",
                )
                require(
                    ip_version == 4 or value >= MIN_MTU_V6,
                    f"{name} {value} is below IPv6's minimum link MTU {MIN_MTU_V6} (RFC 8200); "
                    f"use {MIN_MTU_V6}-{MAX_MTU}",
                )
        if egress_mtu is not None:
            require(kind == "router", f"egress mtu {egress_mtu} needs the router topology (the DUT's egress link)")
            require(
                egress_mtu <= (mtu or DEFAULT_LINK_MTU),
                f"egress mtu {egress_mtu} is above the links' mtu {mtu or DEFAULT_LINK_MTU}; use at most that",
            )
        if vlan is not None:
            require(
                isinstance(vlan, int) and not isinstance(vlan, bool) and MIN_VLAN_ID <= vlan <= MAX_VLAN_ID,
                f"vlan {vlan!r} is out of range {MIN_VLAN_ID}-{MAX_VLAN_ID}",
            )
            require(
                kind != "lo",
                f"vlan {vlan} needs the veth or router topology; lo has no receiving end to filter tags on",
            )
        self.kind = kind
        self.mtu = mtu
        self.egress_mtu = egress_mtu
        self.ip_version = ip_version
        self.vlan = vlan
        self.topology: Topology | None = None
        self._terminating: contextlib.AbstractContextManager[None] = contextlib.nullcontext()

    def __enter__(self) -> Topology:
        caps.require("a sandbox", caps.SANDBOX)
        run_id = netns.new_run_id()
        created: list[str] = []
        self._terminating = netns.terminate_as_interrupt()
        self._terminating.__enter__()  # SIGTERM unwinds to __exit__ as Ctrl-C does, as long as the sandbox lives
        try:
            with netns.deferred_signals():
                self.topology = self._build(run_id, created)
        except BaseException:  # a failed build, or a signal held during it: undo all of it
            try:
                self._remove(created)
            finally:
                self._terminating.__exit__(None, None, None)
            raise
        return self.topology

    def __exit__(self, *exc: object) -> None:
        try:
            if self.topology is not None:
                with netns.deferred_signals():
                    self._remove(list(self.topology.namespaces))
        finally:
            self._terminating.__exit__(None, None, None)

    def _remove(self, names: list[str]) -> None:
        """Remove the namespaces (the VLAN filter goes with the readers' veth end), then its counter map."""
        try:
            for name in names:
                netns.remove(name)
                _live.discard(name)
        finally:
            if self.topology is not None and self.topology.vlan_filter is not None:
                self.topology.vlan_filter.close()
            self.topology = None

    def _new_ns(self, name: str, created: list[str]) -> None:
        created.append(name)  # recorded first: removal of a name never created is a no-op
        _live.add(name)
        netns.create(name)
        with netns.entered(name):
            write_sysctls(QUIET_SYSCTLS if self.ip_version == 4 else QUIET_IPV6_SYSCTLS)
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

    @off_event_loop
    def _build(self, run_id: str, created: list[str]) -> Topology:
        if self.kind == "lo":
            return self._build_lo(run_id, created)
        if self.kind == "router":
            return self._build_router(run_id, created)
        return self._build_veth(run_id, created)

    def _add_address(self, ipr: IPRoute, index: int, address: str, prefixlen: int) -> None:
        """Add ``address``; an IPv6 one without duplicate address detection (IFA_F_NODAD), usable at once."""
        if self.ip_version == 4:
            ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
        else:
            ipr.addr("add", index=index, address=address, prefixlen=prefixlen, flags=IFA_F_NODAD)

    def _build_lo(self, run_id: str, created: list[str]) -> Topology:
        name = f"{run_id}-lo"
        plan = ADDRESSING[self.ip_version]
        self._new_ns(name, created)
        with netns.entered(name):
            write_sysctls(RAW_PATH_SYSCTLS)
            with IPRoute() as ipr:
                index = ipr.link_lookup(ifname="lo")[0]
                self._add_address(ipr, index, plan.writer, plan.host_prefixlen)
                if self.mtu is not None:
                    ipr.link("set", index=index, mtu=self.mtu)
            mtu = link_info("lo")[1]
        return Topology("lo", name, name, "lo", "lo", plan.writer, plan.writer, mtu, run_id, (name,), self.ip_version)

    def _build_veth(self, run_id: str, created: list[str]) -> Topology:
        writer, reader = f"{run_id}-w", f"{run_id}-r"
        plan = ADDRESSING[self.ip_version]
        self._new_ns(writer, created)
        self._new_ns(reader, created)
        mtu = self.mtu or DEFAULT_LINK_MTU
        self._end_host(writer, "rpw0", mtu, plan.writer, plan.veth_prefixlen, peer=("rpr0", reader))
        self._end_host(reader, "rpr0", mtu, plan.reader, plan.veth_prefixlen)
        topo = self._two_ends("veth", (writer, reader), plan.writer, plan.reader, mtu, run_id)
        link = topo.link()
        _pin_neighbours(
            topo,
            (
                ("writer", topo.writer_if, topo.reader_ip, link.dst_mac),
                ("reader", topo.reader_if, topo.writer_ip, link.src_mac),
            ),
        )
        if self.vlan is not None:
            topo.vlan_filter = self._vlan_filter(topo, self.vlan)
        return topo

    def _two_ends(
        self, kind: str, namespaces: tuple[str, ...], writer_ip: str, reader_ip: str, mtu: int, run_id: str
    ) -> Topology:
        """A veth or router sandbox's Topology: the writer's rpw0 in the first namespace, the readers'
        rpr0 in the last."""
        return Topology(
            kind,
            namespaces[0],
            namespaces[-1],
            "rpw0",
            "rpr0",
            writer_ip,
            reader_ip,
            mtu,
            run_id,
            namespaces,
            self.ip_version,
        )

    def _end_host(
        self, ns: str, ifname: str, mtu: int, address: str, prefixlen: int, peer: tuple[str, str] | None = None
    ) -> None:
        """One end host's namespace: the raw path's sysctls, a veth pair from ``ifname`` to ``peer``
        (its interface and namespace) when given, and ``ifname``'s MTU and address."""
        with netns.entered(ns):
            write_sysctls(RAW_PATH_SYSCTLS)
            if peer is not None:
                self._veth_pair(ifname, *peer)
            self._configure(ifname, mtu, address, prefixlen)

    def _veth_pair(self, name: str, peer: str, peer_ns: str) -> None:
        """A veth pair ``name`` <-> ``peer`` made in this thread's namespace, ``peer`` moved to ``peer_ns``."""
        with IPRoute() as ipr:
            ipr.link("add", ifname=name, kind="veth", peer=peer)
            ipr.link("set", index=ipr.link_lookup(ifname=peer)[0], net_ns_fd=peer_ns)

    def _configure(self, ifname: str, mtu: int, address: str, prefixlen: int) -> None:
        """Set ``ifname``'s MTU and address, then bring it up (this thread's namespace)."""
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.link("set", index=index, mtu=mtu)
            self._add_address(ipr, index, address, prefixlen)
            ipr.link("set", index=index, state="up")

    def _build_router(self, run_id: str, created: list[str]) -> Topology:
        """writer (rpw0) <-> (rpd0) DUT (rpd1) <-> (rpr0) readers: two subnets, forwarding in the DUT only."""
        writer, dut, reader = f"{run_id}-w", f"{run_id}-d", f"{run_id}-r"
        plan = ROUTER_ADDRESSING[self.ip_version]
        for name in (writer, dut, reader):
            self._new_ns(name, created)
        mtu = self.mtu or DEFAULT_LINK_MTU
        egress = self.egress_mtu or mtu
        self._end_host(writer, "rpw0", mtu, plan.writer, plan.prefixlen, peer=("rpd0", dut))
        self._end_host(reader, "rpr0", egress, plan.reader, plan.prefixlen, peer=("rpd1", dut))
        with netns.entered(dut):
            write_sysctls(ROUTER_SYSCTLS)
            self._configure("rpd0", mtu, plan.dut_in, plan.prefixlen)
            self._configure("rpd1", egress, plan.dut_out, plan.prefixlen)
        # Each end host reaches the other subnet through the DUT (a route per subnet, no default route).
        for side_ns, ifname, other, gateway in (
            (writer, "rpw0", plan.reader, plan.dut_in),
            (reader, "rpr0", plan.writer, plan.dut_out),
        ):
            with netns.entered(side_ns), IPRoute() as ipr:
                subnet = str(ipaddress.ip_network(f"{other}/{plan.prefixlen}", strict=False))
                ipr.route("add", dst=subnet, gateway=gateway, oif=ipr.link_lookup(ifname=ifname)[0])
        topo = replace(
            self._two_ends("router", (writer, dut, reader), plan.writer, plan.reader, mtu, run_id),
            dut_ns=dut,
            dut_in="rpd0",
            dut_out="rpd1",
            egress_mtu=egress,
        )
        macs = {}
        for side, ifname in (("writer", "rpw0"), ("dut", "rpd0"), ("dut", "rpd1"), ("reader", "rpr0")):
            with topo.enter(side):
                macs[ifname] = link_info(ifname)[2]
        _pin_neighbours(
            topo,
            (
                ("writer", "rpw0", plan.dut_in, macs["rpd0"]),
                ("dut", "rpd0", plan.writer, macs["rpw0"]),
                ("dut", "rpd1", plan.reader, macs["rpr0"]),
                ("reader", "rpr0", plan.dut_out, macs["rpd1"]),
            ),
        )
        if self.vlan is not None:
            topo.vlan_filter = self._vlan_filter(topo, self.vlan)
        return topo

    @staticmethod
    def _vlan_filter(topo: Topology, vlan: int) -> VlanFilter:
        """Load the VLAN filter and attach it to the first receiving end: the DUT's ingress on a router,
        else the readers' veth end (vlan.py)."""
        vlan_filter = VlanFilter(vlan)
        try:
            side, ifname = topo.next_hop
            with topo.enter(side):
                vlan_filter.attach(ifname)
        except BaseException:
            vlan_filter.close()
            raise
        return vlan_filter


def _pin_neighbours(topo: Topology, entries: Sequence[tuple[str, str, str, str]]) -> None:
    """Permanent neighbour entries (ARP for IPv4, ND for IPv6), each (side, interface, IP, MAC), so no op
    waits for resolution and the MACs are fixed."""
    for side, ifname, ip, mac in entries:
        with topo.enter(side), IPRoute() as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=index, state="permanent")


def vlan_filter_support() -> tuple[bool, str]:
    """Can this kernel load the VLAN filter and attach it to a veth end here? (ok, why) for doctor."""
    try:
        with Sandbox("veth", vlan=MAX_VLAN_ID) as topo:
            instructions = topo.vlan_filter.instructions if topo.vlan_filter else 0
    except RawpacerError as exc:
        return False, str(exc)
    return True, f"tc clsact ingress + bpf filter ({instructions} instructions, {jit_state()}) attached to a veth end"


def live_namespaces() -> list[str]:
    """Namespaces this process created and has not removed yet."""
    return sorted(_live)


def pid_namespaces(pid: int | None = None) -> list[str]:
    """rawpacer namespaces that exist now, of ``pid`` (default: this process)."""
    return netns.owned(os.getpid() if pid is None else pid)
