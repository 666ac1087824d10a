"""Why datagrams were lost, as a table of rules over the counters that moved: pure, no kernel needed.

Each rule names one cause, counts how many datagrams the counter deltas attribute to it (0: not
seen) and says it in one sentence. ``findings`` applies the table in order: the device under test's
causes first (upstream of the readers), then the readers' namespace's, most specific first.
Counter names are ``Section.Name`` as /proc/net/snmp, netstat and snmp6 spell them (``Udp.NoPorts``,
``Udp6.RcvbufErrors``), ``rt_cache.in_martian_*``, ``link.IF.rx_*`` and ``Softnet.Dropped``; the
DUT's carry ``dut.`` (``dut.Ip.FragFails``, ``dut.qdisc.rpd1.tbf.drops``, ``dut.nft.COMMENT.drops``:
rawpacer.dut.counters). ``explain_evidence(..., lost)`` also says how many lost datagrams no counter
accounts for.
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

    def each(self, prefix: str, suffix: str) -> dict[str, int]:
        """The changes of counters named ``prefix + X + suffix``, by X (``each("dut.nft.", ".drops")``)."""
        return {
            k[len(prefix) : len(k) - len(suffix)]: v
            for k, v in self.moved.items()
            if k.startswith(prefix) and k.endswith(suffix) and v > 0
        }


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


def _listed(parts: Mapping[str, int], name: Callable[[str], str]) -> str:
    """``tbf on rpd1`` for one part, ``tbf on rpd1 (14,000) and pfifo on rpd0 (69)`` for several."""
    if len(parts) == 1:
        return name(next(iter(parts)))
    return " and ".join(f"{name(key)} ({value:,})" for key, value in sorted(parts.items()))


def _qdisc_name(key: str) -> str:
    """``rpd1.tbf`` -> ``tbf on rpd1``."""
    ifname, _, kind = key.partition(".")
    return f"{kind} on {ifname}"


def _dut_header(e: Evidence) -> int:
    """Bad headers at the DUT, and TTL / hop-limit expiries beyond the ICMP errors it was allowed to
    send: both move InHdrErrors (ip_forward's too_many_hops, ip6_forward), ICMP is rate-limited."""
    expired = e.get("dut.Icmp.OutTimeExcds", "dut.Icmp6.OutTimeExcds")
    return max(e.get("dut.Ip.InHdrErrors", "dut.Ip6.InHdrErrors") - expired, 0)


@dataclass(frozen=True)
class Rule:
    """One cause: how many datagrams the evidence attributes to it, and the sentence that says so."""

    cause: str
    count: Callable[[Evidence], int]
    says: str
    """A sentence with ``{n}`` (the count), ``{off}`` (sysctls that are off) and ``{what}`` to fill in."""
    what: Callable[[Evidence], str] | None = None
    """What fills ``{what}``: which qdisc, which rules, how many ICMP errors went out."""
    loss: bool = True
    """Whether the count is datagrams lost (False: a flag, or information such as fragmentation)."""


def counter(*names: str) -> Callable[[Evidence], int]:
    """A rule's count that is simply these counters' change."""
    return lambda e: e.get(*names)


def each_of(prefix: str, suffix: str, name: Callable[[str], str]) -> Callable[[Evidence], str]:
    """A rule's ``{what}``: the counters named ``prefix + X + suffix`` that moved, X said by ``name``."""
    return lambda e: _listed(e.each(prefix, suffix), name)


def count_of(*names: str) -> Callable[[Evidence], str]:
    """A rule's ``{what}``: these counters' change, written with thousands separators."""
    return lambda e: f"{e.get(*names):,}"


DUT_RULES: tuple[Rule, ...] = (
    Rule(
        "dut-qdisc",
        lambda e: sum(e.each("dut.qdisc.", ".drops").values()),
        "the DUT's {what} dropped {n:,} (qdisc drops)",
        each_of("dut.qdisc.", ".drops", _qdisc_name),
    ),
    Rule(
        "dut-nftables",
        lambda e: sum(e.each("dut.nft.", ".drops").values()),
        "{what} on the DUT dropped {n:,} (nftables rule counters)",
        lambda e: (
            ("nftables rule " if len(e.each("dut.nft.", ".drops")) == 1 else "nftables rules ")
            + _listed(e.each("dut.nft.", ".drops"), lambda comment: f"'{comment}'")
        ),
    ),
    Rule(
        "dut-not-forwarding",
        counter("dut.Ip.InAddrErrors", "dut.Ip6.InAddrErrors"),
        "the DUT did not forward {n:,} datagram(s) (Ip/Ip6 InAddrErrors on the DUT): with forwarding off in "
        "its namespace (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding) a datagram for another host is refused",
    ),
    Rule(
        "dut-no-route",
        counter("dut.IpExt.InNoRoutes", "dut.Ip.OutNoRoutes", "dut.Ip6.InNoRoutes", "dut.Ip6.OutNoRoutes"),
        "the DUT had no route for {n:,} datagram(s) (IpExt InNoRoutes, Ip OutNoRoutes, Ip6 In/OutNoRoutes on the "
        "DUT); it answers with ICMP destination unreachable, rate-limited",
    ),
    Rule(
        "dut-ttl",
        counter("dut.Icmp.OutTimeExcds", "dut.Icmp6.OutTimeExcds"),
        "TTL / hop limit exceeded at the DUT: {n:,} datagram(s) arrived with a TTL or hop limit of 1 or less, were "
        "dropped and answered with ICMP time exceeded (Icmp/Icmp6 OutTimeExcds on the DUT)",
    ),
    Rule(
        "dut-header",
        _dut_header,
        "the DUT dropped {n:,} datagram(s) with a bad IP header, or whose TTL / hop limit ran out beyond the ICMP "
        "errors its rate limit let out (Ip/Ip6 InHdrErrors on the DUT)",
    ),
    Rule(
        "dut-fragmentation-needed",
        counter("dut.Ip.FragFails"),
        "the DUT needed fragmentation with DF set: {n:,} dropped and ICMP 'fragmentation needed' sent (Ip.FragFails, "
        "IcmpMsg.OutType3 {what}): the egress MTU is below the datagram (RFC 1191)",
        count_of("dut.IcmpMsg.OutType3"),
    ),
    Rule(
        "dut-packet-too-big",
        counter("dut.Ip6.InTooBigErrors"),
        "IPv6 Packet Too Big at the DUT: {n:,} datagram(s) larger than its egress MTU dropped and {what} ICMPv6 "
        "Packet Too Big sent (Ip6.InTooBigErrors, Icmp6.OutPktTooBigs); IPv6 routers never fragment (RFC 8200)",
        count_of("dut.Icmp6.OutPktTooBigs"),
    ),
    Rule(
        "dut-link",
        lambda e: sum(e.each("dut.link.", "_dropped").values()),
        "the DUT's links dropped {n:,} ({what}; rtnl_link_stats64)",
        each_of("dut.link.", "_dropped", lambda key: key.replace(".", " ") + "_dropped"),
    ),
    Rule(
        "dut-fragmented",
        counter("dut.Ip.FragOKs"),
        "the DUT fragmented {n:,} datagram(s) into {what} fragments (Ip FragOKs/FragCreates; information, not a loss)",
        count_of("dut.Ip.FragCreates"),
        loss=False,
    ),
)
"""The device under test's causes (router topology), upstream of the readers: they come first."""

READER_RULES: tuple[Rule, ...] = (
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
        loss=False,
    ),
)
"""The causes seen in the readers' namespace."""

RULES: tuple[Rule, ...] = DUT_RULES + READER_RULES

NONE_MOVED = "no drop counter moved: every datagram that arrived was delivered"
UNATTRIBUTED = "{n:,} not attributed to any counter"


def _seen(evidence: Evidence) -> list[tuple[Rule, int]]:
    """Every rule that fires, with its count, in the table's order ("nothing arrived" only alone)."""
    seen: list[tuple[Rule, int]] = []
    for rule in RULES:
        n = rule.count(evidence)
        if n > 0 and (rule.cause != "nothing-arrived" or not seen):
            seen.append((rule, n))
    return seen


def findings(evidence: Evidence) -> list[str]:
    """One sentence per cause the evidence shows, in the table's order (empty when none)."""
    off = ", ".join(k.replace("/", ".") for k in evidence.sysctls_off) or "none"
    return [
        rule.says.format(n=n, off=off, what=rule.what(evidence) if rule.what else "") for rule, n in _seen(evidence)
    ]


def attributed(evidence: Evidence) -> int:
    """How many lost datagrams the counters account for: the counts of every loss rule that fired."""
    return sum(n for rule, n in _seen(evidence) if rule.loss)


def dut_dropped(evidence: Evidence) -> int:
    """How many of those the device under test's own counters account for (its loss rules)."""
    return sum(n for rule, n in _seen(evidence) if rule.loss and rule in DUT_RULES)


def explain_evidence(evidence: Evidence, lost: int | None = None) -> str:
    """Every finding in one line, or that no drop counter moved; given ``lost`` (datagrams the readers
    missed), it ends with how many of them no counter accounts for, when any."""
    text = "; ".join(findings(evidence)) or NONE_MOVED
    if lost is not None and lost > attributed(evidence):
        text += "; " + UNATTRIBUTED.format(n=lost - attributed(evidence))
    return text
