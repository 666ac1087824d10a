"""What a benchmark run is asked to do, every value checked before any namespace or process exists.

``make_config`` takes CLI-style values (text or numbers) for ``compare``, ``send`` and
``compare()`` alike and returns a frozen ``Config``, or raises a one-line UsageError naming the
value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from rawpacer import dut, outputs
from rawpacer.bench import confidence, gobench
from rawpacer.bench.calibrate import Benchtime, parse_benchtime
from rawpacer.bench.shaping import ShapeSpec, can_shape, check_shape, message_size
from rawpacer.errors import UsageError, require
from rawpacer.headers import MAX_VLAN_ID, MIN_VLAN_ID
from rawpacer.headers.addresses import parse_ip
from rawpacer.headers.fit import check_mtu
from rawpacer.limits import (
    DEFAULT_LINK_MTU,
    FIRST_PORT,
    MAX_MESSAGE_SIZE,
    MAX_MTU,
    MAX_READERS,
    MIN_MESSAGE_SIZE,
    MIN_MTU,
    MIN_MTU_V6,
)
from rawpacer.messages import KINDS as PAYLOADS
from rawpacer.pacing import PaceSpec, catch_up_label, parse_spin
from rawpacer.remote.spec import Host, parse_hosts
from rawpacer.sandbox import IP_VERSIONS, KINDS
from rawpacer.sandbox.ports import Ports, check_port
from rawpacer.sandbox.topology import ADDRESSING, ROUTER_ADDRESSING
from rawpacer.writers import base as registry
from rawpacer.writers.base import Fit

MAX_VLAN_PRIORITY = 7
"""802.1Q's priority code point is 3 bits (IEEE 802.1Q, 6.9.3)."""

MODES = ("fanout", "stream")


@dataclass(frozen=True)
class Config:
    """What to compare, validated by the CLI before any namespace exists."""

    writers: tuple[str, ...]
    readers: tuple[int, ...] = (100,)
    size: int = 1500
    payload: str = "crypto"
    fit: Fit = Fit.TRIM
    mode: str = "fanout"
    topology: str = "lo"
    mtu: int | None = None
    benchtime: Benchtime = field(default_factory=Benchtime)
    count: int = 1
    ci: bool = False
    """Bootstrap 95 % intervals of the medians and ratios (``bench.confidence``): asked for with ``--ci``,
    and on by themselves from ``confidence.MIN_SAMPLES`` passes up."""
    with_go: bool = False
    pcap: str | None = None
    ip_version: int = 4
    vlan: int | None = None
    vlan_priority: int = 0
    pace: PaceSpec | None = None
    """When datagrams leave: None for as fast as each writer goes, else rate, burst, pattern, seed."""
    egress_mtu: int | None = None
    """The router's egress link MTU (``--egress-mtu``), when smaller than ``mtu``."""
    dut: tuple[str, ...] = ()
    """DUT profiles (``--dut``), as given; checked by ``rawpacer.dut.parse_profiles``."""
    dut_setup: tuple[str, ...] = ()
    """The user's own DUT commands (``--dut-setup FILE``'s lines, or a list from Python)."""
    tx_iface: str | None = None
    """Two ports of real hardware (topology ``ports``): frames leave by ``tx_iface`` ..."""
    rx_iface: str | None = None
    """... and readers listen on ``rx_iface``'s address; a real DUT is cabled between them."""
    next_hop_mac: str | None = None
    """The MAC raw frames leaving ``tx_iface`` go to (None: the one neighbour the kernel knows there)."""
    remote: tuple[Host, ...] = ()
    """Hosts the readers run on (``--remote``), over SSH; empty: readers here, in the sandbox."""
    remote_addr: tuple[str | None, ...] = ()
    """The address each remote host's readers listen on (``--remote-addr``); None: the one ssh reached."""
    shape: ShapeSpec | None = None
    """A shaped stream (``--sizes``, ``--vary``): its frame sizes and varied fields; None: the plain fan-out."""
    named: tuple[str, ...] = ()
    """Rows the user asked for by name (``--writers``, the Go seed with ``--with-go``): one that does
    not run makes the exit code say so; a default writer the kernel cannot run only says so in its row."""

    def params(self) -> dict[str, Any]:
        """The parameters as JSON records them."""
        return {
            "writers": list(self.writers),
            "readers": list(self.readers),
            "size": self.size,
            "payload": self.payload,
            "fit": self.fit.value,
            "mode": self.mode,
            "topology": self.topology,
            "mtu": self.mtu,
            "benchtime": str(self.benchtime),
            "count": self.count,
            "ci": self.ci,
            "with_go": self.with_go,
            "pcap": self.pcap,
            "ip_version": self.ip_version,
            "vlan": self.vlan,
            "vlan_priority": self.vlan_priority if self.vlan is not None else None,
            "egress_mtu": self.egress_mtu,
            "dut": [profile.describe() for profile in dut.parse_profiles(self.dut)],
            "dut_setup": list(self.dut_setup),
            "tx_iface": self.tx_iface,
            "rx_iface": self.rx_iface,
            "remote": [h.label for h in self.remote],
            "remote_addr": list(self.remote_addr),
            "rate": None if self.pace is None else self.pace.rate.text,
            "burst": None if self.pace is None else self.pace.burst,
            "pattern": None if self.pace is None else self.pace.pattern,
            "seed": None if self.pace is None else self.pace.seed,
            "spin": None if self.pace is None else self.pace.spin,
            "catch_up": None if self.pace is None else catch_up_label(self.pace.catch_up),
            **(ShapeSpec().params() if self.shape is None else self.shape.params()),
            "slow_writer_caps_s": {
                n: cap for n in self.writers if (cap := registry.get(n).benchtime_cap_s) is not None
            },
        }

    def steps(self) -> int:
        """Progress steps: one per writer pass and one per Go run."""
        return len(self.readers) * self.count * (len(self.writers) + (1 if self.with_go else 0))


def parse_int(name: str, value: int | str, low: int, high: int) -> int:
    """An integer option given as text or number, in low..high; UsageError naming it otherwise."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UsageError(f"{name} {value!r} is not an integer; use {low}-{high}") from None
    require(low <= number <= high, f"{name} {number} is out of range; use {low}-{high}")
    return number


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    require(value in allowed, f"{name} {value!r} is not allowed; use one of: {', '.join(allowed)}")
    return value


def _names(value: str | Sequence[str] | None, tagging: bool) -> tuple[str, ...]:
    """The writers named, or by default every writer (every one that can tag frames, with a VLAN)."""
    if value is None:
        return tuple(n for n in registry.names() if not tagging or registry.get(n).tags_vlan)
    return tuple(w.strip() for w in value.split(",")) if isinstance(value, str) else tuple(value)


def check_vlan(
    vlan: int | str | None, priority: int | str, topology: str, writers: Sequence[str]
) -> tuple[int | None, int]:
    """(VLAN id, priority) for a run, refusing a tag on ``lo`` or with a writer that does not build
    the link header (the kernel does: the standard writers, ip-raw) before anything is created."""
    pcp = parse_int("vlan priority", priority, 0, MAX_VLAN_PRIORITY)
    if vlan is None:
        return None, pcp
    vid = parse_int("vlan", vlan, MIN_VLAN_ID, MAX_VLAN_ID)
    require(
        topology in ("veth", "router"),
        f"--vlan {vid} needs --topology veth or router: the first receiving veth end strips the tag",
    )
    plain = [name for name in writers if not registry.get(name).tags_vlan]
    require(
        not plain,
        f"--vlan {vid}: {', '.join(plain)} cannot tag frames (the kernel builds their link header); "
        "use packet-raw, packet-ring, xdp or scapy",
    )
    return vid, pcp


def pcap_path(stem: str, writer: str, readers: int) -> str:
    """Where one raw writer's frames go: ``run.pcap`` -> ``run-packet-ring-100.pcap``."""
    root, ext = os.path.splitext(stem)
    return f"{root}-{writer}-{readers}{ext or '.pcap'}"


def check_pace(
    rate: str | float | None,
    burst: int | str,
    pattern: str,
    seed: int | str | None,
    mode: str,
    per_op: bool,
    spin: str = "adaptive",
    catch_up: str | float | None = None,
) -> PaceSpec | None:
    """The pacing asked for, if any: --rate paces a stream (compare, ``--mode stream``) or, with
    ``per_op``, every fan-out datagram by datagram (send); --burst, --pattern, --seed, --spin and
    --catch-up need it."""
    if rate is None:
        require(
            str(burst).strip() == "1" and pattern == "constant" and seed is None,
            "--burst, --pattern and --seed shape a paced stream; give --rate too",
        )
        require(parse_spin(spin) == "adaptive", f"--spin {spin} says how a paced stream waits; give --rate too")
        require(catch_up is None, f"--catch-up {catch_up} says how a late paced stream catches up; give --rate too")
        return None
    require(per_op or mode == "stream", f"--rate {rate} paces a stream; use it with --mode stream")
    return PaceSpec.parse(rate, burst, pattern, seed, spin, catch_up)


def check_device(
    topology: str,
    mtu: int | None,
    egress_mtu: int | str | None,
    profiles: str | Sequence[str] | None,
    setup: str | Sequence[str] | None,
    ip_version: int,
) -> tuple[int | None, tuple[str, ...], tuple[str, ...]]:
    """(egress MTU, DUT profiles, DUT set-up lines) for a run: each needs the router topology; the
    profiles are parsed, a set-up file read (``setup`` as text is a path, as a list the commands)."""
    specs = (profiles,) if isinstance(profiles, str) else tuple(profiles or ())
    for option, given in (("--dut", specs), ("--dut-setup", setup), ("--egress-mtu", egress_mtu)):
        require(
            not given or topology == "router",
            f"{option} needs --topology router (a DUT namespace between writer and readers); topology is {topology}",
        )
    dut.parse_profiles(specs)
    if setup is None:
        lines: tuple[str, ...] = ()
    else:
        lines = dut.read_script(setup) if isinstance(setup, str) else dut.script_lines(setup)
    if egress_mtu is None:
        return None, specs, lines
    lowest = MIN_MTU if ip_version == 4 else MIN_MTU_V6
    return parse_int("egress mtu", egress_mtu, lowest, mtu or DEFAULT_LINK_MTU), specs, lines


def check_ports(
    tx: str | None, rx: str | None, next_hop: str | None, topology: str, writers: Sequence[str], with_go: bool
) -> str:
    """The topology of a run: ``ports`` when the user's own two interfaces are named (both, distinct, up,
    addressed; link-header writers only, as only they choose the interface a frame leaves by), else as given."""
    if tx is None and rx is None:
        require(next_hop is None, "--next-hop-mac goes with --tx-iface and --rx-iface")
        return topology
    require(tx is not None and rx is not None, "--tx-iface and --rx-iface go together: give both")
    require(topology == "lo", f"--tx-iface/--rx-iface replace the sandbox: drop --topology {topology}")
    plain = [name for name in writers if not registry.get(name).tags_vlan]
    require(
        not plain,
        f"--tx-iface: {', '.join(plain)} cannot choose the interface a frame leaves by (the kernel routes "
        "to a local address locally); use packet-raw, packet-ring, xdp or scapy",
    )
    require(not with_go, "--with-go runs the seed's job on loopback; drop it with --tx-iface")
    return "ports"


def check_remote(
    remote: str | None,
    remote_addr: str | None,
    topology: str,
    rx_iface: str | None,
    tx_iface: str | None,
    writers: Sequence[str],
    with_go: bool,
) -> tuple[tuple[Host, ...], tuple[str | None, ...], str]:
    """(hosts, their reader addresses, topology) for ``--remote``: the sandbox is replaced by the remote
    hosts, so no --topology, --rx-iface or --with-go; writers that build the link header need
    --tx-iface, the interface toward the remote."""
    if remote is None:
        require(remote_addr is None, "--remote-addr goes with --remote: name the remote host too")
        return (), (), topology
    hosts = parse_hosts(remote)
    require(topology == "lo", f"--remote replaces the sandbox: drop --topology {topology}")
    require(rx_iface is None, "--remote reads on the remote host: drop --rx-iface")
    require(not with_go, "--with-go runs the seed's job on loopback; drop it with --remote")
    addrs: tuple[str | None, ...] = (None,) * len(hosts)
    if remote_addr is not None:
        addrs = tuple(a.strip() for a in remote_addr.split(","))
        require(
            len(addrs) == len(hosts),
            f"--remote-addr {remote_addr!r} gives {len(addrs)} addresses for {len(hosts)} hosts; give one per host",
        )
        for addr in addrs:
            parse_ip("--remote-addr", addr)
    linked = [name for name in writers if registry.get(name).tags_vlan]
    require(
        not linked or tx_iface is not None,
        f"--remote: writers that build the link header ({', '.join(linked)}) need --tx-iface NAME, "
        "the interface toward the remote",
    )
    return hosts, addrs, "remote"


class PathOptions(TypedDict, total=False):
    """The options on a run's way that every entry point passes on unchanged: the DUT and the
    user's own ports, each None (absent) unless given; ``make_config`` says what each may be."""

    egress_mtu: int | str | None
    dut: str | Sequence[str] | None
    dut_setup: str | Sequence[str] | None
    tx_iface: str | None
    rx_iface: str | None
    next_hop_mac: str | None


def make_config(
    *,
    writers: str | Sequence[str] | None = None,
    readers: int | str | Sequence[int] = 100,
    size: int | str = 1500,
    payload: str = "crypto",
    fit: str | Fit = "trim",
    mode: str = "fanout",
    topology: str = "lo",
    mtu: int | str | None = None,
    benchtime: str | float = "1s",
    count: int | str = 1,
    with_go: bool = False,
    pcap: str | None = None,
    ci: bool = False,
    ip_version: int | str = 4,
    vlan: int | str | None = None,
    vlan_priority: int | str = 0,
    rate: str | float | None = None,
    burst: int | str = 1,
    pattern: str = "constant",
    seed: int | str | None = None,
    spin: str = "adaptive",
    catch_up: str | float | None = None,
    per_op_pacing: bool = False,
    egress_mtu: int | str | None = None,
    dut: str | Sequence[str] | None = None,
    dut_setup: str | Sequence[str] | None = None,
    tx_iface: str | None = None,
    rx_iface: str | None = None,
    next_hop_mac: str | None = None,
    remote: str | None = None,
    remote_addr: str | None = None,
    sizes: str | None = None,
    vary: str | Sequence[str] | None = None,
) -> Config:
    """A Config from CLI-style values (strings or numbers), every one checked: UsageError, one line."""
    counts = str(readers).split(",") if isinstance(readers, (int, str)) else list(readers)
    chosen = _names(writers, vlan is not None or tx_iface is not None)
    if remote is not None and writers is None and tx_iface is None:  # by default, the writers the kernel routes
        chosen = tuple(n for n in chosen if not registry.get(n).tags_vlan)
    if (sizes is not None or vary) and writers is None:  # by default, the writers that send a frame pool
        chosen = tuple(n for n in chosen if can_shape(n))
    for name in chosen:
        registry.get(name)
    require(len(set(chosen)) == len(chosen), f"writers {writers!r} names a writer twice")
    version = parse_int("ip version", ip_version, 4, 6)
    require(version in IP_VERSIONS, f"ip version {version} is not allowed; use 4 or 6")
    hosts, addrs, topology = check_remote(
        remote, remote_addr, _choice("topology", topology, KINDS), rx_iface, tx_iface, chosen, with_go
    )
    if not hosts:
        topology = check_ports(tx_iface, rx_iface, next_hop_mac, topology, chosen, with_go)
    vid, pcp = check_vlan(vlan, vlan_priority, topology, chosen)
    require(not (with_go and version == 6), "--with-go runs the seed's own IPv4 job; drop -6 to run it")
    mode = _choice("mode", mode, MODES)
    paced_seed = seed if (sizes is None and not vary) or (rate is not None and pattern == "poisson") else None
    pace = check_pace(rate, burst, pattern, paced_seed, mode, per_op_pacing, spin, catch_up)
    require(not (with_go and pace is not None), "--with-go runs the seed's unpaced job; drop --rate to run it")
    links = None if mtu is None else check_mtu(parse_int("mtu", mtu, MIN_MTU, MAX_MTU), version)
    egress, profiles, setup = check_device(topology, links, egress_mtu, dut, dut_setup, version)
    passes = parse_int("count", count, 1, 1000)
    require(
        not ci or passes >= confidence.MIN_SAMPLES,
        f"--ci with count {passes}: a bootstrap interval needs --count {confidence.MIN_SAMPLES} or more",
    )
    plan = ROUTER_ADDRESSING[version] if topology == "router" else ADDRESSING[version]
    counts_checked = tuple(parse_int("readers", part, 1, MAX_READERS) for part in counts)
    shape = check_shape(
        sizes,
        vary,
        seed,
        writers=chosen,
        mode="stream" if per_op_pacing else mode,
        ip_version=version,
        mtu=links,
        readers=counts_checked,
        first_port=FIRST_PORT,
        addresses=(plan.writer, plan.reader),
        remote=bool(hosts),
        vlan=vid,
    )
    require(
        shape is None or Fit.parse(fit) is not Fit.FRAGMENT,
        "--fit fragment: a shaped stream's frame pool holds one frame per datagram; use trim or strict",
    )
    require(
        shape is None or pcap is None,
        f"--pcap {pcap!r} records a writer's own sends; a shaped stream's frame pool leaves by the C loop: drop one",
    )
    message = parse_int("size", size, MIN_MESSAGE_SIZE, MAX_MESSAGE_SIZE)
    config = Config(
        writers=chosen,
        readers=counts_checked,
        size=message if shape is None else message_size(shape, message, version),
        payload=_choice("payload", payload, PAYLOADS),
        fit=Fit.parse(fit),
        mode=mode,
        topology=topology,
        mtu=links,
        benchtime=parse_benchtime(str(benchtime)),
        count=passes,
        ci=bool(ci) or passes >= confidence.MIN_SAMPLES,
        with_go=bool(with_go),
        pcap=pcap,
        ip_version=version,
        vlan=vid,
        vlan_priority=pcp,
        pace=pace,
        egress_mtu=egress,
        dut=profiles,
        dut_setup=setup,
        tx_iface=tx_iface,
        rx_iface=rx_iface,
        next_hop_mac=next_hop_mac,
        remote=hosts,
        remote_addr=addrs,
        shape=shape,
        named=(chosen if writers is not None else ()) + (tuple(gobench.ROWS.values()) if with_go else ()),
    )
    if config.pcap is not None:
        require(not os.path.isdir(config.pcap), f"--pcap {config.pcap!r} is a directory; give a file name")
        for name in (n for n in chosen if registry.get(n).raw):
            for readers_count in config.readers:
                outputs.check("--pcap", pcap_path(config.pcap, name, readers_count))
    if config.with_go:
        gobench.require_go()
    if config.remote:
        require(next_hop_mac is None or tx_iface is not None, "--next-hop-mac goes with --tx-iface")
        if tx_iface is not None:
            check_port("--tx-iface", tx_iface, version)
    if config.tx_iface is not None and config.rx_iface is not None:
        Ports(config.tx_iface, config.rx_iface, ip_version=version, next_hop=next_hop_mac).check()
    return config
