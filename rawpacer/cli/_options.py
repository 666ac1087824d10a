"""The options several subcommands share (messages, sandbox, IP version, VLAN), declared once, and
the keyword arguments of ``make_config`` they become."""

from __future__ import annotations

import argparse
from typing import Any

from rawpacer.limits import MAX_MESSAGE_SIZE, MAX_MTU, MAX_READERS, MIN_MESSAGE_SIZE, MIN_MTU
from rawpacer.pacing import DEFAULT_CATCH_UP


def add_messages(p: argparse.ArgumentParser, readers_default: str, readers_help: str) -> None:
    """--readers, --size, --payload, --fit, --pcap."""
    p.add_argument("--readers", default=readers_default, help=f"{readers_help} (1-{MAX_READERS})")
    p.add_argument(
        "--size", default="1500", help=f"message bytes ({MIN_MESSAGE_SIZE}-{MAX_MESSAGE_SIZE}; default 1500)"
    )
    p.add_argument("--payload", default="crypto", help="message bytes: crypto (as the seed), fast, fixed")
    p.add_argument(
        "--fit", default="trim", help="what raw writers do with messages over the MTU: trim, fragment, strict"
    )
    p.add_argument(
        "--pcap", default=None, metavar="PATH", help="raw writers write every frame they send to a pcap file"
    )


def add_device(p: argparse.ArgumentParser) -> None:
    """--topology, --mtu, and the device under test between writer and readers: --egress-mtu, --dut, --dut-setup."""
    p.add_argument("--topology", default="lo", help="lo, veth or router (writer, DUT, readers; default lo)")
    p.add_argument("--mtu", default=None, help=f"MTU of the veth links, or of lo ({MIN_MTU}-{MAX_MTU}; IPv6 1280 up)")
    dut = p.add_argument_group("the device under test (with --topology router; see docs/dut.md)")
    dut.add_argument(
        "--egress-mtu", default=None, help="a smaller MTU on the DUT's egress link: it fragments or answers Too Big"
    )
    dut.add_argument(
        "--dut",
        action="append",
        default=None,
        metavar="SPEC",
        help="a DUT profile, repeatable: tbf:RATE[,burst=B][,limit=L|latency=T], police:RATE, drop:FRACTION, "
        "rules:N, conntrack",
    )
    dut.add_argument(
        "--dut-setup",
        default=None,
        metavar="FILE",
        help="your own DUT: one command a line, run in the DUT namespace; {in} and {out} name its interfaces",
    )

    ports = p.add_argument_group("two ports of real hardware (raw link-header writers; warned; see docs/dut.md)")
    ports.add_argument("--tx-iface", default=None, metavar="NAME", help="send out this interface (no sandbox)")
    ports.add_argument("--rx-iface", default=None, metavar="NAME", help="readers listen on this interface's address")
    ports.add_argument(
        "--next-hop-mac", default=None, metavar="MAC", help="the DUT port's MAC (default: the one neighbour on tx)"
    )

    remote = p.add_argument_group("readers on other hosts, over SSH (see docs/two-hosts.md)")
    remote.add_argument(
        "--remote",
        default=None,
        metavar="[USER@]HOST[:PORT]",
        help="run the readers there (rawpacer agent over ssh); several: h1,h2 or weighted h1=3,h2=1; "
        "raw link-header writers leave by --tx-iface",
    )
    remote.add_argument(
        "--remote-addr",
        default=None,
        metavar="ADDR",
        help="the address the remote readers listen on, one per host (default: the address ssh reached)",
    )


DEVICE_OPTIONS = (
    "topology", "mtu", "egress_mtu", "dut", "dut_setup", "tx_iface", "rx_iface", "next_hop_mac", "remote", "remote_addr",
)  # fmt: skip
"""``add_device``'s options, each a ``make_config`` keyword of the same name."""
SANDBOX_OPTIONS = (*DEVICE_OPTIONS, "ip_version", "vlan", "vlan_priority")
"""``add_sandbox``'s options, likewise."""
SHARED_OPTIONS = (
    *SANDBOX_OPTIONS,
    "readers",
    "size",
    "payload",
    "fit",
    "pcap",
    "rate",
    "burst",
    "pattern",
    "seed",
    "spin",
    "catch_up",
    "sizes",
    "vary",
)
"""The options compare and send share (``add_sandbox``, ``add_messages``, ``add_pacing``, ``add_shapes``), likewise."""


def device_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The topology and DUT options as ``make_config`` keywords."""
    return {name: getattr(args, name) for name in DEVICE_OPTIONS}


def sandbox_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``add_sandbox``'s options as ``make_config`` keywords."""
    return {name: getattr(args, name) for name in SANDBOX_OPTIONS}


def add_sandbox(p: argparse.ArgumentParser) -> None:
    """The device options (``add_device``), -6/--ipv6, --vlan, --vlan-priority."""
    add_device(p)
    p.add_argument(
        "-6", "--ipv6", dest="ip_version", action="store_const", const=6, default=4, help="IPv6 from 2001:2::/48"
    )
    p.add_argument(
        "--vlan",
        default=None,
        metavar="ID",
        help="tag every frame with 802.1Q VLAN ID (1-4094; veth, link-header writers)",
    )
    p.add_argument("--vlan-priority", default="0", metavar="PCP", help="the tag's priority code point (0-7)")


def add_pacing(p: argparse.ArgumentParser, what: str) -> None:
    """--rate, --burst, --pattern, --seed, --spin, --catch-up."""
    p.add_argument(
        "--rate",
        default=None,
        help=f"pace {what}: packets/s (10k, 10kpps, 1.5Mpps) or a bit rate on the link bytes (200Mbit, 1Gbit)",
    )
    p.add_argument("--burst", default="1", help="datagrams that leave together at each departure (1-1024; default 1)")
    p.add_argument("--pattern", default="constant", help="departures: constant (even gaps) or poisson (exponential)")
    p.add_argument(
        "--seed", default=None, help="seed of the poisson departures and of --vary ...:random (recorded in the JSON)"
    )
    add_waits(p, "stream", spin_default="adaptive")


def add_waits(p: argparse.ArgumentParser | argparse._ArgumentGroup, what: str, spin_default: str | None) -> None:
    """--spin and --catch-up: how a paced ``what`` waits for each departure and gets back on its
    schedule when late (docs/pacing.md); ``spin_default`` None where "not given" must show."""
    p.add_argument(
        "--spin",
        default=spin_default,
        help="how the pacer waits: adaptive (sleep, then spin for the margin this host's wake-ups need; "
        "default) or full (spin only, as sockperf does: one CPU busy)",
    )
    p.add_argument(
        "--catch-up",
        default=None,
        metavar="FACTOR|burst",
        help=f"how a {what} that fell behind its schedule (a stall of this host) gets back: at most FACTOR "
        f"times its rate (default {DEFAULT_CATCH_UP:g}: no bursts, more gaps shortened) or burst (what is due "
        "leaves back to back, as sockperf and tcpreplay do: fewer gaps off)",
    )


def add_shapes(p: argparse.ArgumentParser) -> None:
    """--sizes and --vary: a shaped stream's frame sizes and per-packet fields (docs/traffic.md)."""
    shapes = p.add_argument_group(
        "traffic shapes (a stream, by the writers that send a frame pool; see docs/traffic.md)"
    )
    shapes.add_argument(
        "--sizes",
        default=None,
        metavar="MIX",
        help="frame sizes: imix (64:7,594:4,1518:1), SIZE:WEIGHT,... or one SIZE (RFC 2544 counts; per-size counts)",
    )
    shapes.add_argument(
        "--vary",
        action="append",
        default=None,
        metavar="FIELD=RANGE[:inc|random]",
        help="vary a field per packet, repeatable: sport, dport (reader ports), src-ip, dst-ip, flow-label, vlan",
    )


def add_hdr(p: argparse.ArgumentParser, what: str) -> None:
    """--hdr DIR: HdrHistogram interval logs (.hlog) of the run's distributions."""
    p.add_argument(
        "--hdr",
        dest="hdr_dir",
        default=None,
        metavar="DIR",
        help=f"write {what} as HdrHistogram logs (.hlog) in DIR; the tables print them to p99.99, "
        "with the count behind each (docs/trusting-a-figure.md)",
    )


def config_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The shared options as ``make_config`` keywords."""
    return {name: getattr(args, name) for name in SHARED_OPTIONS}
