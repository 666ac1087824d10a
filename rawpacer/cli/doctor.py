"""``rawpacer doctor``: can this machine run rawpacer? Capabilities, sandbox setup, one probe per writer.

It says what timing figures here rest on (clocksource, timer slack, governor, a 1 s stall probe).
In fresh sandboxes (lo, veth at MTU 1500, and the router with its DUT namespace) it shows the
raw-path sysctls, the interfaces' MTUs and MACs as the kernel reports them, then sends one message
with every registered writer to one reader and checks it arrived intact; a failed probe comes with the kernel counters'
diagnosis. Exit 0 when every probe passes. With ``--remote``, it checks those hosts instead
(rawpacer.remote.probe: ssh, the agent's handshake, its clock, a reader bound there).
"""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass

from rawpacer import diagnose, dut, host
from rawpacer.errors import RawpacerError, require
from rawpacer.kernel import caps
from rawpacer.kernel.afxdp import xdp_support
from rawpacer.pacing import pacing_qdiscs
from rawpacer.remote import parse_hosts
from rawpacer.remote.probe import check_host
from rawpacer.sandbox import Sandbox, Topology, vlan_filter_support
from rawpacer.sandbox.topology import ROUTER_SYSCTLS, link_info, read_sysctl
from rawpacer.writers import base

PROBE_SIZE = 1500
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Probe:
    """One writer's one-message delivery check: passed or not, and what was seen."""

    writer: str
    ok: bool
    detail: str


def probe(topo: Topology, name: str, size: int = PROBE_SIZE) -> Probe:
    """Send one ``size``-byte message with writer ``name`` to one fresh reader socket; check it arrived."""
    with topo.enter("reader"):
        reader = socket.socket(socket.AF_INET6 if topo.ip_version == 6 else socket.AF_INET, socket.SOCK_DGRAM)
    with reader:
        with topo.enter("reader"):
            reader.bind((topo.reader_ip, 0))
        reader.settimeout(PROBE_TIMEOUT)
        message = os.urandom(size)
        before = diagnose.snapshot_of(topo)
        try:
            with topo.enter("writer"):
                writer = base.get(name)(topo.target([reader.getsockname()[1]]), base.WriterOptions(message_size=size))
            with writer:
                writer.send([message])
                expected = message[: writer.delivered_size]
        except (RawpacerError, OSError) as exc:
            return Probe(name, False, f"writer failed: {exc}")
        try:
            got = reader.recv(1 << 16)
        except TimeoutError:
            return Probe(name, False, "nothing received: " + diagnose.explain(before, diagnose.snapshot_of(topo)))
    if got != expected:
        return Probe(name, False, f"received {len(got)} bytes that differ from the {len(expected)} sent")
    cut = f" (trimmed from {size} to fit MTU {topo.link().mtu})" if len(got) < size else ""
    return Probe(name, True, f"{len(got)} bytes delivered intact{cut}")


def _describe(topo: Topology) -> list[str]:
    link = topo.link()
    lines = [f"sandbox {topo.kind}: namespaces {', '.join(topo.namespaces)}"]
    for side in ("writer", "reader") if topo.kind != "lo" else ("reader",):
        values = " ".join(f"{k.removeprefix('net/ipv4/conf/')}={v}" for k, v in topo.sysctls(side).items())
        lines.append(f"  {side} sysctls: {values}")
    lines.append(f"  writer link {link.ifname} (ifindex {link.ifindex}) mtu {link.mtu} mac {link.src_mac}")
    if topo.dut_ns is not None:
        with topo.enter("dut"):
            forwarding = " ".join(f"{key.split('/', 2)[-1]}={read_sysctl(key)}" for key in ROUTER_SYSCTLS)
            ports = ", ".join(f"{name} mtu {link_info(name)[1]}" for name in (topo.dut_in, topo.dut_out) if name)
        lines.append(f"  DUT {ports}; {forwarding}; raw frames go to its ingress mac {link.dst_mac}")
        lines.append(f"  reader link {topo.reader_if} ({topo.writer_ip} -> DUT -> {topo.reader_ip})")
    else:
        lines.append(f"  reader link {topo.reader_if} mac {link.dst_mac} ({topo.writer_ip} -> {topo.reader_ip})")
    return lines


PROFILE_PROBES = ("tbf:10gbit", "police:10mpps", "drop:0.000000001", "rules:100", "conntrack")
"""Every DUT profile, loose enough to pass a probe: the router's probes go through all of them at once."""


def check_sandbox(kind: str, mtu: int | None, names: list[str], ip_version: int = 4) -> tuple[list[str], list[Probe]]:
    """Describe a fresh sandbox of ``kind`` and probe every writer in it (a router's DUT runs every profile)."""
    with Sandbox(kind, mtu=mtu, ip_version=ip_version) as topo:
        lines = _describe(topo)
        if topo.dut_ports is not None:
            run = dut.apply(*topo.dut_ports, dut.parse_profiles(PROFILE_PROBES), ())
            lines.append(f"  DUT profiles installed ({len(run)} commands): {', '.join(PROFILE_PROBES)}")
        if kind == "lo":
            with topo.enter("writer"):
                lines.append(f"  xdp: {xdp_support()[1]}")
        probes = [probe(topo, name) for name in names]
    return lines, probes


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommand."""
    parser = sub.add_parser("doctor", help="check capabilities, sandbox setup and one delivery per writer")
    parser.add_argument("--writer", action="append", metavar="NAME", help="probe only this writer (repeatable)")
    parser.add_argument(
        "-6",
        "--ipv6",
        dest="ip_version",
        action="store_const",
        const=6,
        default=4,
        help="probe over IPv6 (2001:2::/48)",
    )
    parser.add_argument(
        "--remote",
        action="append",
        metavar="[USER@]HOST[:PORT]",
        help="check this remote host instead (repeatable, or a comma list): ssh, the agent, its clock, a reader there",
    )
    parser.add_argument(
        "--remote-addr", default=None, metavar="ADDR[,ADDR]", help="the address a reader binds on, one per host"
    )
    parser.set_defaults(func=run)


def run_remote(specs: list[str], addrs: str | None) -> int:
    """One line per check of every host; 0 when every check passed, 1 otherwise."""
    hosts = [h for spec in specs for h in parse_hosts(spec)]
    where: list[str | None] = [a.strip() for a in addrs.split(",")] if addrs else [None] * len(hosts)
    require(len(where) == len(hosts), f"--remote-addr {addrs!r} gives {len(where)} addresses for {len(hosts)} hosts")
    failed = total = 0
    for remote, addr in zip(hosts, where):
        for check in check_host(remote, addr):
            print(check.line(), flush=True)
            total += 1
            failed += not check.ok
    print(f"{total - failed}/{total} remote checks passed" + ("" if not failed else f"; {failed} failed"))
    return 0 if not failed else 1


def run(args: argparse.Namespace) -> int:
    """Print the checks; 0 when every probe passed, 1 otherwise."""
    if getattr(args, "remote", None):
        return run_remote(args.remote, args.remote_addr)
    print("capabilities: " + ", ".join(f"{caps.NAMES[c]} {'yes' if caps.have(c) else 'NO'}" for c in caps.EVERYTHING))
    caps.require("doctor", caps.EVERYTHING, "doctor")
    names = [base.get(n).name for n in args.writer] if getattr(args, "writer", None) else base.names()
    ok, why = vlan_filter_support()
    print(f"vlan filter: {'yes' if ok else 'NO'}: {why}")
    qdiscs = ", ".join(f"{name} {state}" for name, state in pacing_qdiscs().items())
    print(f"kernel pacing (SO_TXTIME needs fq or etf): {qdiscs}; rawpacer paces in user space either way")
    print(host.timing_line())
    print(host.probe().line())
    failed = total = 0
    for kind, mtu in (("lo", None), ("veth", 1500), ("router", 1500)):
        lines, probes = check_sandbox(kind, mtu, names, args.ip_version)
        print("\n".join(lines))
        for result in probes:
            print(f"  probe {result.writer:<16} {'OK' if result.ok else 'FAIL'}  {result.detail}")
        total += len(probes)
        failed += sum(not p.ok for p in probes)
    print(f"{total - failed}/{total} probes passed" + ("" if not failed else f"; {failed} failed"))
    return 0 if not failed else 1
