"""Why datagrams were lost, as a table of rules over the counters that moved: pure, no kernel needed.

Each rule names one cause, counts how many datagrams the counter deltas attribute to it (0: not
seen) and says it in one sentence. ``findings`` applies the table in order, most specific first.
Counter names are ``Section.Name`` as /proc/net/snmp, netstat and snmp6 spell them (``Udp.NoPorts``,
``Udp6.RcvbufErrors``), ``rt_cache.in_martian_*``, ``link.IF.rx_*`` and ``Softnet.Dropped``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Evidence:
    """What moved between two snapshots, and the raw-path sysctls that are off now."""

    moved: Mapping[str, int]
    sysctls_off: tuple[str, ...] = ()

    def get(self, *names: str) -> int:
        """The sum of the named counters' changes (0 for those that did not move)."""
        return sum(self.moved.get(name, 0) for name in names)

    def links(self, stat: str) -> int:
        """One rtnl_link_stats64 field's change, summed over every interface."""
        return sum(v for k, v in self.moved.items() if k.startswith("link.") and k.endswith("." + stat))


def _wrong_mac(e: Evidence) -> int:
    """Frames that reached an interface but never IP: PACKET_OTHERHOST, i.e. not our MAC."""
    otherhost = e.links("rx_otherhost_dropped")
    if otherhost:
        return otherhost
    arrived = e.links("rx_packets")
    return arrived if arrived and not e.get("Ip.InReceives", "Ip6.InReceives") else 0


def _bad_ip_header(e: Evidence) -> int:
    """Bad IPv4 headers (a bad checksum moves both InCsumErrors and InHdrErrors: ip_rcv_core) and IPv6 ones."""
    return max(e.get("Ip.InCsumErrors"), e.get("Ip.InHdrErrors")) + e.get("Ip6.InHdrErrors")


def _martian(e: Evidence) -> int:
    """IPv4 datagrams routing refused: received, not delivered, not explained by another counter."""
    martians = e.get("rt_cache.in_martian_src", "rt_cache.in_martian_dst")
    if not martians and not e.sysctls_off:
        return 0
    unaccounted = e.get("Ip.InReceives") - e.get("Ip.InDelivers", "Ip.InHdrErrors", "Ip.InAddrErrors")
    unaccounted -= e.get("Ip.ReasmReqds") - e.get("Ip.ReasmOKs")
    return max(unaccounted, 0)


def _nothing_arrived(e: Evidence) -> int:
    """1 when no frame reached any interface or IP at all (the writer's side is then to blame)."""
    return int(not e.links("rx_packets") and not e.get("Ip.InReceives", "Ip6.InReceives"))


@dataclass(frozen=True)
class Rule:
    """One cause: how many datagrams the evidence attributes to it, and the sentence that says so."""

    cause: str
    count: Callable[[Evidence], int]
    says: str
    """A sentence with ``{n}`` (the count) and ``{off}`` (sysctls that are off) to fill in."""


def counter(*names: str) -> Callable[[Evidence], int]:
    """A rule's count that is simply these counters' change."""
    return lambda e: e.get(*names)


RULES: tuple[Rule, ...] = (
    Rule(
        "ip-checksum",
        _bad_ip_header,
        "IP header checksum errors: {n} datagram(s) with a bad IP header (checksum, length, version) were "
        "dropped (Ip InCsumErrors/InHdrErrors, Ip6 InHdrErrors)",
    ),
    Rule(
        "udp-checksum",
        counter("Udp.InCsumErrors", "Udp6.InCsumErrors"),
        "UDP checksum errors: {n} datagram(s) failed the UDP checksum (Udp/Udp6 InCsumErrors); it must cover "
        "the pseudo-header, the UDP header and the payload, and is mandatory over IPv6 (RFC 8200)",
    ),
    Rule(
        "no-socket",
        counter("Udp.NoPorts", "Udp6.NoPorts"),
        "no socket on the port: {n} datagram(s) went to a UDP port nobody listens on (Udp/Udp6 NoPorts)",
    ),
    Rule(
        "receive-buffer",
        counter("Udp.RcvbufErrors", "Udp6.RcvbufErrors"),
        "receive buffers full: {n} datagram(s) dropped because a reader's socket buffer was full "
        "(Udp/Udp6 RcvbufErrors); a larger SO_RCVBUF or a faster reader keeps them",
    ),
    Rule(
        "socket-memory",
        counter("Udp.MemErrors", "Udp6.MemErrors"),
        "UDP memory exhausted: {n} datagram(s) dropped at the protocol's memory limit (Udp/Udp6 MemErrors; "
        "net.ipv4.udp_mem)",
    ),
    Rule(
        "backlog",
        counter("Softnet.Dropped"),
        "input backlog full: {n} frame(s) dropped because a CPU's backlog queue was full (softnet_stat, "
        "net.core.netdev_max_backlog; counted machine-wide)",
    ),
    Rule(
        "wrong-mac",
        _wrong_mac,
        "wrong destination MAC: {n} frame(s) arrived on the interface (rx) but never reached IP: their "
        "destination MAC is not the receiving interface's, so the kernel marked them PACKET_OTHERHOST and "
        "dropped them (rx_otherhost_dropped)",
    ),
    Rule(
        "martian",
        _martian,
        "martian drop: {n} datagram(s) reached IP but were refused by routing (rt_cache in_martian_src/dst): a "
        "frame injected with a local source address is a martian unless the receiving namespace sets "
        "net.ipv4.conf.{{all,lo}}.accept_local=1 and route_localnet=1 (inside that namespace only); off now: {off}",
    ),
    Rule(
        "reassembly",
        counter("Ip.ReasmFails", "Ip.ReasmTimeout", "Ip6.ReasmFails", "Ip6.ReasmTimeout"),
        "fragment reassembly failed: {n} (Ip/Ip6 ReasmFails/ReasmTimeout); a fragment was lost, overlapped, "
        "arrived too late, or the fragments of one datagram did not share an identification",
    ),
    Rule(
        "wrong-address",
        counter("Ip.InAddrErrors", "Ip6.InAddrErrors"),
        "wrong destination address: {n} datagram(s) not for this host (Ip/Ip6 InAddrErrors)",
    ),
    Rule(
        "nothing-arrived",
        _nothing_arrived,
        "nothing arrived: no interface in the reader namespace received a frame",
    ),
)

NONE_MOVED = "no drop counter moved: every datagram that arrived was delivered"


def findings(evidence: Evidence) -> list[str]:
    """One sentence per cause the evidence shows, in the table's order (empty when none)."""
    off = ", ".join(k.replace("/", ".") for k in evidence.sysctls_off) or "none"
    found: list[str] = []
    for rule in RULES:
        n = rule.count(evidence)
        if n > 0 and (rule.cause != "nothing-arrived" or not found):
            found.append(rule.says.format(n=n, off=off))
    return found


def explain_evidence(evidence: Evidence) -> str:
    """Every finding in one line, or that no drop counter moved."""
    return "; ".join(findings(evidence)) or NONE_MOVED
