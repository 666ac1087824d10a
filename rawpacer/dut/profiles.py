"""What the device under test does to the stream it forwards: small recipes (``--dut SPEC``, repeatable),
each parsed from its spec and rendered to shell-free commands run inside the DUT's namespace.

- ``tbf:RATE[,burst=B][,limit=L|latency=T]``: ``tc qdisc replace dev OUT root tbf ...``, a shaper on
  the DUT's egress to the readers (defaults: burst 32kb, latency 20ms);
- ``police:RATE``: nftables ``limit rate over RATE drop``, in packets/s (``50kpps``, ``5000/s``,
  ``5000pps``) or a bit rate (``100mbit``, policed as bytes/second);
- ``drop:FRACTION``: nftables ``numgen random mod M < K drop``, that fraction at random;
- ``rules:N``: N nftables rules that match nothing, in a chain every forwarded packet jumps to and scans;
- ``conntrack``: stateful forwarding, so conntrack is in the path (invalid packets dropped).

Every nftables rule that can drop or count carries ``counter`` and a comment naming its profile
(``"rawpacer police"``), all in one table, ``table inet rawpacer``, whose ``forward`` chain has policy
accept. Whatever order the specs come in, the chain holds them in one order: the policers first (police,
then drop), so they see every packet; then the jump to the rule-scan filler; then conntrack's
verdicts, which end the chain. Each nft profile loads its own rules with ``nft -f /dev/stdin``; declaring the table and chain
again only appends rules (nft(8): a ruleset file adds to what exists).

What the two shapers count differs by a header (both measured on the same stream they drop from):
tbf charges every packet its length on the wire as the qdisc sees it, Ethernet header included, no
FCS (net/sched/sch_tbf.c, ``qdisc_pkt_len``); nftables' byte limit charges ``skb->len`` at the
forward hook, which is the IP packet alone, L3 (net/netfilter/nft_limit.c, ``nft_limit_bytes_eval``).
"""

from __future__ import annotations

import abc
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rawpacer.dut.units import (
    format_bits,
    format_time,
    parse_bit_rate,
    parse_count,
    parse_fraction,
    parse_police_rate,
    parse_size,
    parse_time_us,
    spec_error,
)
from rawpacer.limits import (
    DEFAULT_TBF_BURST,
    DEFAULT_TBF_LATENCY_US,
    MAX_DUT_RULES,
    MAX_POLICE_BURST,
    MAX_TBF_LATENCY_US,
    MAX_TBF_SIZE,
    MIN_POLICE_BURST,
    MIN_TBF_BURST,
    MIN_TBF_LATENCY_US,
    MIN_TBF_LIMIT,
    POLICE_BURSTS_PER_S,
)

NFT_FAMILY, NFT_TABLE, NFT_CHAIN = "inet", "rawpacer", "forward"
NFT_SCAN_CHAIN = "scan"
"""The regular chain rules:N fills; it holds no counter, so counters are read from every chain but it."""
NFT_LOAD = ("nft", "-f", "/dev/stdin")
"""nft reads a ruleset from its stdin: one process per profile, no temporary file, no shell."""


@dataclass(frozen=True)
class Command:
    """One command a profile runs in the DUT's namespace: an argv (no shell) and optional stdin text."""

    argv: tuple[str, ...]
    stdin: str | None = None
    stdin_note: str = ""
    """What ``stdin`` holds, in a few words for the report (``ruleset of 3 rules``)."""

    @property
    def line(self) -> str:
        """The command as one line for a report: the argv, shell-quoted, and what its stdin holds."""
        return shlex.join(self.argv) + (f" < {self.stdin_note or 'stdin'}" if self.stdin is not None else "")


def comment(profile: str, detail: str = "") -> str:
    """The comment a profile's nft rules carry: ``rawpacer police``, ``rawpacer conntrack new``."""
    return f"rawpacer {profile}" + (f" {detail}" if detail else "")


def nft_rule(match: str, verdict: str, note: str) -> str:
    """One rule: the match, then ``counter`` (so it counts only what matched), the verdict, the comment."""
    return f'{match + " " if match else ""}counter {verdict} comment "{note}"'


def nft_ruleset(rules: Sequence[str], chains: Mapping[str, Sequence[str]] | None = None) -> str:
    """``rules`` appended to rawpacer's forward chain, after regular ``chains`` (name -> rules) it may
    jump to; the table and the base chain are declared, or declared again, which changes nothing."""
    lines = [f"table {NFT_FAMILY} {NFT_TABLE} {{"]
    for name, body in (chains or {}).items():
        lines += [f"\tchain {name} {{", *(f"\t\t{rule}" for rule in body), "\t}"]
    lines += [f"\tchain {NFT_CHAIN} {{", "\t\ttype filter hook forward priority filter; policy accept;"]
    lines += [*(f"\t\t{rule}" for rule in rules), "\t}", "}", ""]
    return "\n".join(lines)


def nft_load(rules: Sequence[str], chains: Mapping[str, Sequence[str]] | None = None) -> Command:
    """``nft -f /dev/stdin`` fed ``rules`` for rawpacer's forward chain (and ``chains`` before it)."""
    count = len(rules) + sum(len(body) for body in (chains or {}).values())
    return Command(NFT_LOAD, nft_ruleset(rules, chains), f"ruleset of {count:,} rule{'s' * (count != 1)}")


@dataclass(frozen=True)
class Profile(abc.ABC):
    """One recipe with its parameters: ``describe()`` for the report, ``commands()`` to install it.

    A subclass is one row of the profile table: ``name``, ``syntax``, ``stage`` (its place in the
    forward chain; 0 when it is not an nft profile) and ``parse`` from the text after ``name:``.
    Every profile keeps ``spec``, the text it was parsed from, as its first field.
    """

    name: ClassVar[str]
    syntax: ClassVar[str]
    stage: ClassVar[int] = 0
    spec: str

    @classmethod
    @abc.abstractmethod
    def parse(cls, spec: str, argument: str | None) -> Profile:
        """The profile ``spec`` asks for; ``argument`` is what follows ``name:`` (None: no colon)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for the report and the JSON."""

    @abc.abstractmethod
    def commands(self, in_if: str, out_if: str) -> list[Command]:
        """What installs it, given the DUT's interface facing the writer and the one facing the readers."""


def _required(spec: str, argument: str | None, syntax: str) -> str:
    if argument is None or not argument.strip():
        raise spec_error(spec, f"needs a value; use {syntax}")
    return argument


@dataclass(frozen=True)
class Tbf(Profile):
    """tc's token bucket filter on the DUT's egress (tc-tbf(8)): rate, bucket, and a queue given as a
    byte limit or as the longest a packet may wait (latency); packets that do not fit are dropped."""

    name: ClassVar[str] = "tbf"
    syntax: ClassVar[str] = "tbf:RATE[,burst=B][,limit=L|latency=T]"
    rate: int
    burst: int = DEFAULT_TBF_BURST
    limit: int | None = None
    latency_us: int | None = DEFAULT_TBF_LATENCY_US

    @classmethod
    def parse(cls, spec: str, argument: str | None) -> Tbf:
        rate_text, *options = _required(spec, argument, cls.syntax).split(",")
        rate = parse_bit_rate(spec, "rate", rate_text)
        given: dict[str, str] = {}
        for option in options:
            key, sep, value = option.partition("=")
            key = key.strip()
            if not sep or key not in ("burst", "limit", "latency"):
                raise spec_error(spec, f"option {option!r} is not allowed; use burst=B, limit=L or latency=T")
            if key in given:
                raise spec_error(spec, f"option {key!r} is given twice; give it once")
            given[key] = value
        if "limit" in given and "latency" in given:
            raise spec_error(spec, "limit and latency exclude each other (tc-tbf(8)); give one of them")
        burst = parse_size(spec, "burst", given["burst"], MIN_TBF_BURST, MAX_TBF_SIZE) if "burst" in given else None
        if "limit" in given:
            limit = parse_size(spec, "limit", given["limit"], MIN_TBF_LIMIT, MAX_TBF_SIZE)
            return cls(spec, rate, burst or DEFAULT_TBF_BURST, limit, None)
        latency = DEFAULT_TBF_LATENCY_US
        if "latency" in given:
            latency = parse_time_us(spec, "latency", given["latency"], MIN_TBF_LATENCY_US, MAX_TBF_LATENCY_US)
        return cls(spec, rate, burst or DEFAULT_TBF_BURST, None, latency)

    def _queue(self) -> tuple[str, str]:
        if self.limit is not None:
            return "limit", str(self.limit)
        assert self.latency_us is not None  # one of the two, by construction
        return "latency", format_time(self.latency_us)

    def describe(self) -> str:
        queue = f"limit {self.limit:,} B" if self.limit is not None else " ".join(self._queue())
        return (
            f"tbf: shape the DUT's egress to the readers to {format_bits(self.rate)} "
            f"(burst {self.burst:,} B, {queue}; tc counts L2 bytes, no FCS)"
        )

    def commands(self, in_if: str, out_if: str) -> list[Command]:
        argv = ("tc", "qdisc", "replace", "dev", out_if, "root", "tbf", "rate", format_bits(self.rate))
        return [Command((*argv, "burst", str(self.burst), *self._queue()))]


@dataclass(frozen=True)
class Police(Profile):
    """nftables' token-bucket policer in the forward chain: what goes over the rate is dropped.

    A packet rate's bucket holds ``burst`` packets: by default 10 ms of the rate (at least 5, nft's own
    default), as a committed burst does on a hardware policer. With nft's 5 a software sender is
    policed for its pacing jitter, not its rate: one catch-up after a 100 us pause of the sending host
    already overflows it (measured: a 50kpps policer passed 25-31k/s without loss). A byte rate's
    bucket holds one second of the rate (net/netfilter/nft_limit.c, nft_limit_init: ``tokens_max =
    unit * (rate + burst) / rate``, burst 0 by default), so a byte policer lets a full second's worth
    through at once before it drops. The bytes are the IP packet's (``skb->len`` at the forward hook:
    L3), not the frame's.
    """

    name: ClassVar[str] = "police"
    syntax: ClassVar[str] = "police:RATE[,burst=N] (50kpps, 5000/s, 5000pps, or a bit rate like 100mbit)"
    stage: ClassVar[int] = 1
    rate: int
    unit: str
    """``pps`` (rate in packets/s) or ``bit/s`` (rate in bits/s, policed as rate // 8 bytes/second)."""
    burst: int | None = None
    """The bucket in packets (a packet rate only; None: nft's byte default)."""

    @classmethod
    def parse(cls, spec: str, argument: str | None) -> Police:
        rate_text, *options = _required(spec, argument, cls.syntax).split(",")
        rate, unit = parse_police_rate(spec, "rate", rate_text)
        if not options:
            return cls(spec, rate, unit, max(MIN_POLICE_BURST, rate // POLICE_BURSTS_PER_S) if unit == "pps" else None)
        key, sep, value = options[0].partition("=")
        if len(options) > 1 or not sep or key.strip() != "burst":
            raise spec_error(spec, f"option {','.join(options)!r} is not allowed; use burst=N (packets)")
        if unit != "pps":
            raise spec_error(spec, "burst=N counts packets; give the rate in packets/s (50kpps) to set it")
        return cls(spec, rate, unit, parse_count(spec, "burst", value, 1, MAX_POLICE_BURST))

    def _limit(self) -> str:
        if self.unit == "pps":
            return f"{self.rate}/second burst {self.burst} packets"
        return f"{self.rate // 8} bytes/second"

    def describe(self) -> str:
        if self.unit == "pps":
            return f"police: nftables drops what the DUT forwards over {self.rate:,} packets/s (burst {self.burst:,})"
        return (
            f"police: nftables drops what the DUT forwards over {format_bits(self.rate)} "
            f"({self.rate // 8:,} bytes/s of IP packets, L3)"
        )

    def commands(self, in_if: str, out_if: str) -> list[Command]:
        rule = nft_rule(f"limit rate over {self._limit()}", "drop", comment(self.name))
        return [nft_load([rule])]


@dataclass(frozen=True)
class Drop(Profile):
    """A random fraction of what the DUT forwards dropped: nft's ``numgen random mod M`` is below K for
    K of every M packets on average (nft(8), NUMGEN EXPRESSION), independently per packet."""

    name: ClassVar[str] = "drop"
    syntax: ClassVar[str] = "drop:FRACTION (0 < FRACTION < 1, e.g. 0.001)"
    stage: ClassVar[int] = 2
    below: int
    modulus: int

    @classmethod
    def parse(cls, spec: str, argument: str | None) -> Drop:
        return cls(spec, *parse_fraction(spec, "fraction", _required(spec, argument, cls.syntax)))

    def describe(self) -> str:
        return f"drop: nftables drops {self.below} of every {self.modulus:,} forwarded packets at random"

    def commands(self, in_if: str, out_if: str) -> list[Command]:
        rule = nft_rule(f"numgen random mod {self.modulus} < {self.below}", "drop", comment(self.name))
        return [nft_load([rule])]


@dataclass(frozen=True)
class Rules(Profile):
    """N rules every forwarded packet is compared against and none matches (``meta mark`` 1..N; the
    stream's packets carry mark 0): the cost of a linear rule scan, ahead of the chain's accept.

    They sit in a regular chain, ``scan``, that the forward chain jumps to (one counted rule,
    "rawpacer rules", so its counter says how many packets scanned them all). The filler rules have
    no statement: they can neither drop nor count, and reading counters never lists them
    (``nft list`` of 100,000 rules takes seconds; of the forward chain alone, milliseconds).
    N=0 leaves the table, the hook and the jump, with nothing to scan.
    """

    name: ClassVar[str] = "rules"
    syntax: ClassVar[str] = f"rules:N (0-{MAX_DUT_RULES:,})"
    stage: ClassVar[int] = 3
    count: int

    @classmethod
    def parse(cls, spec: str, argument: str | None) -> Rules:
        return cls(spec, parse_count(spec, "count", _required(spec, argument, cls.syntax), 0, MAX_DUT_RULES))

    def describe(self) -> str:
        return f"rules: {self.count:,} non-matching nftables rules ahead of the accept"

    def commands(self, in_if: str, out_if: str) -> list[Command]:
        filler = [f"meta mark {mark}" for mark in range(1, self.count + 1)]
        return [nft_load([nft_rule("", f"jump {NFT_SCAN_CHAIN}", comment(self.name))], {NFT_SCAN_CHAIN: filler})]


@dataclass(frozen=True)
class Conntrack(Profile):
    """Stateful forwarding: every packet looked up in conntrack; established and related ones and new
    flows accepted, invalid ones dropped (the classic stateful-firewall chain, nft(8) CT EXPRESSION)."""

    name: ClassVar[str] = "conntrack"
    syntax: ClassVar[str] = "conntrack (no value)"
    stage: ClassVar[int] = 4

    @classmethod
    def parse(cls, spec: str, argument: str | None) -> Conntrack:
        if argument is not None:
            raise spec_error(spec, "conntrack takes no value; use conntrack")
        return cls(spec)

    def describe(self) -> str:
        return "conntrack: stateful forwarding (established/related and new accepted, invalid dropped)"

    def commands(self, in_if: str, out_if: str) -> list[Command]:
        rules = [
            nft_rule("ct state invalid", "drop", comment(self.name, "invalid")),
            nft_rule("ct state established,related", "accept", comment(self.name, "established")),
            nft_rule("ct state new", "accept", comment(self.name, "new")),
        ]
        return [nft_load(rules)]


PROFILES: dict[str, type[Profile]] = {cls.name: cls for cls in (Tbf, Police, Drop, Rules, Conntrack)}
"""The profile table: every recipe by name."""


def usage() -> str:
    """Every profile's syntax, for --help and errors."""
    return "; ".join(cls.syntax for cls in PROFILES.values())


def parse_profile(spec: str) -> Profile:
    """One ``--dut`` spec, ``name`` or ``name:value``; UsageError (one line) when it is not a profile."""
    if not isinstance(spec, str):
        raise spec_error(repr(spec), f"is not a profile; use one of: {usage()}")
    name, colon, argument = spec.strip().partition(":")
    if name not in PROFILES:
        raise spec_error(spec, f"profile {name!r} is unknown; use one of: {', '.join(PROFILES)}")
    return PROFILES[name].parse(spec, argument if colon else None)


def parse_profiles(specs: Sequence[str]) -> tuple[Profile, ...]:
    """Every ``--dut`` spec, each profile at most once, in the order they are installed (by stage)."""
    profiles = [parse_profile(spec) for spec in specs]
    seen: dict[str, str] = {}
    for profile in profiles:
        if profile.name in seen:
            raise spec_error(
                profile.spec, f"cannot compose with {seen[profile.name]!r}: give each profile once (one {profile.name})"
            )
        seen[profile.name] = profile.spec
    return tuple(sorted(profiles, key=lambda profile: profile.stage))
