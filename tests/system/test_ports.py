"""Two ports of real hardware (--tx-iface/--rx-iface), tested on stand-ins the test makes: a "host"
namespace with two veth ends (the NIC ports) cabled to a forwarding "box" namespace (the DUT)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from helpers import cli

from rawpacer.sandbox import owned

HOST_TX, HOST_RX = "198.18.1.1", "198.18.2.1"
BOX_TX, BOX_RX = "198.18.1.254", "198.18.2.254"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def stand_ins() -> Iterator[tuple[str, str]]:
    """(host, box) namespaces: host's porta/portb cabled to box's boxa/boxb; box forwards; the box's MAC
    on porta is in host's neighbour table, as after a ping. Removed on the way out."""
    host, box = f"rptest-{os.getpid()}-host", f"rptest-{os.getpid()}-box"
    try:
        for ns in (host, box):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            # IPv4 only: no router solicitations or MLD reports in the ports' interface counters
            ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        for port, peer in (("porta", "boxa"), ("portb", "boxb")):
            ip("-n", host, "link", "add", port, "type", "veth", "peer", "name", peer, "netns", box)
        for ns, ifname, address in (
            (host, "porta", HOST_TX),
            (host, "portb", HOST_RX),
            (box, "boxa", BOX_TX),
            (box, "boxb", BOX_RX),
        ):
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", ifname)
            ip("-n", ns, "link", "set", ifname, "up")
        ip("netns", "exec", box, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        mac = json.loads(
            subprocess.run(
                ["ip", "-j", "-n", box, "link", "show", "boxa"], capture_output=True, text=True, check=True
            ).stdout
        )[0]["address"]
        ip("-n", host, "neigh", "replace", BOX_TX, "lladdr", mac, "dev", "porta", "nud", "reachable")
        yield host, box
    finally:
        for ns in (host, box):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def in_host(host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, prefix=("ip", "netns", "exec", host))


@pytest.mark.parametrize("writer", ["packet-raw", "packet-ring", "xdp"])
def test_frames_leave_by_tx_cross_the_box_and_are_read_on_rx(writer):
    with stand_ins() as (host, box):
        done = in_host(host, "send", "--writer", writer, "--tx-iface", "porta", "--rx-iface", "portb", "--ops", "3")
        assert done.returncode == 0, done.stderr
        assert "30 of 30 datagrams delivered, 30 intact" in done.stdout
        assert "sending out porta" in done.stderr and "accept_local set on portb" in done.stderr
        forwarded = subprocess.run(
            ["ip", "netns", "exec", box, "cat", "/proc/net/snmp"], capture_output=True, text=True, check=True
        ).stdout
        names, values = [line.split() for line in forwarded.splitlines() if line.startswith("Ip:")]
        assert int(values[names.index("ForwDatagrams")]) >= 30
        accept_local = subprocess.run(
            ["ip", "netns", "exec", host, "sysctl", "-n", "net.ipv4.conf.portb.accept_local"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert accept_local.stdout.strip() == "0"  # restored
    assert not [n for n in owned() if n.startswith(f"rawpacer-{os.getpid()}-")]


def test_compare_over_two_ports_reports_topology_ports(tmp_path):
    out = tmp_path / "r.json"
    with stand_ins() as (host, _):
        done = in_host(
            host,
            "compare",
            "--tx-iface",
            "porta",
            "--rx-iface",
            "portb",
            "--writers",
            "packet-ring",
            "--benchtime",
            "20x",
            "--json",
            str(out),
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(out.read_text())
        assert report["params"]["topology"] == "ports"
        (row,) = report["results"]
        assert row["error"] is None and row["samples"][0]["intact"] == row["samples"][0]["sent"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tx-iface", "porta"], "--tx-iface and --rx-iface go together"),
        (["--tx-iface", "porta", "--rx-iface", "porta"], "both name 'porta'"),
        (["--tx-iface", "porta", "--rx-iface", "nosuch0"], "--rx-iface 'nosuch0': no such interface"),
        (["--tx-iface", "porta", "--rx-iface", "portb", "--writer", "udp-sendto"], "udp-sendto cannot choose"),
        (["--tx-iface", "porta", "--rx-iface", "portb", "--topology", "router"], "drop --topology router"),
        (["--tx-iface", "porta", "--rx-iface", "portb", "--next-hop-mac", "zz"], "is not a MAC address"),
    ],
)
def test_bad_port_input_is_one_line_before_anything_is_sent(args, message):
    with stand_ins() as (host, _):
        done = in_host(host, "send", *args)
        assert done.returncode == 2
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_down_rx_port_is_refused():
    with stand_ins() as (host, _):
        ip("-n", host, "link", "set", "portb", "down")
        done = in_host(host, "send", "--tx-iface", "porta", "--rx-iface", "portb")
        assert done.returncode == 2 and "--rx-iface 'portb' is down" in done.stderr


def test_replay_over_two_ports_rewritten_and_as_captured(tmp_path):
    from helpers import capture_frames, write_pcap

    path = write_pcap(tmp_path / "c.pcap", capture_frames(2, 5))
    with stand_ins() as (host, _):
        done = in_host(
            host, "replay", str(path), "--rewrite", "--tx-iface", "porta", "--rx-iface", "portb", "--topspeed"
        )
        assert done.returncode == 0, done.stderr
        assert "sending out porta" in done.stderr
        row = next(line for line in done.stdout.splitlines() if "total" in line).split("│")
        assert [cell.strip() for cell in row[4:7]] == ["10", "10", "10"]  # sent, delivered, intact
        done = in_host(host, "replay", str(path), "--tx-iface", "porta", "--rx-iface", "portb", "--rate", "1k")
        assert done.returncode == 0, done.stderr
        assert "10 frames read, 10 sent" in done.stdout and "interfaces: 10 sent" in done.stdout
