"""Every option of every subcommand, given a bad value: exit 2, one line naming the value and what is
allowed, no traceback, nothing created. The table must cover every option the parser knows."""

from __future__ import annotations

import argparse
import atexit
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import ROOT, capture_frames, run_cli, write_pcap

from rawpacer.cli import build_parser
from rawpacer.sandbox import Sandbox, pid_namespaces

ROUTER = ["--topology", "router"]
DEVICE: list[tuple[list[str], str]] = [
    (["--topology", "ring"], "topology 'ring' is not allowed; use one of: lo, veth, router"),
    (["--dut", "tbf:1mbit"], "--dut needs --topology router"),
    (["--dut", "warp:1", *ROUTER], "--dut 'warp:1': profile 'warp' is unknown; use one of: tbf, police"),
    (["--dut", "tbf:0mbit", *ROUTER], "--dut 'tbf:0mbit': rate '0mbit' is not allowed"),
    (["--dut", "drop:1.5", *ROUTER], "--dut 'drop:1.5': fraction '1.5' is out of range"),
    (["--dut", "rules:-1", *ROUTER], "--dut 'rules:-1': count '-1' is not allowed"),
    (["--dut", "tbf:1mbit", "--dut", "tbf:2mbit", *ROUTER], "cannot compose with 'tbf:1mbit'"),
    (["--dut-setup", "/nonexistent-file", *ROUTER], "DUT setup script '/nonexistent-file' cannot be read"),
    (["--dut-setup", "/", *ROUTER], "DUT setup script '/' is a directory"),
    (["--dut-setup", "/dev/null", *ROUTER], "DUT setup script '/dev/null' has no command"),
    (["--dut-setup", "/dev/null"], "--dut-setup needs --topology router"),
    (["--egress-mtu", "1280"], "--egress-mtu needs --topology router"),
    (["--egress-mtu", "1501", *ROUTER], "egress mtu 1501 is out of range; use 68-1500"),
    (["--egress-mtu", "1400", "--mtu", "1300", *ROUTER], "egress mtu 1400 is out of range; use 68-1300"),
    (["--tx-iface", "lo"], "--tx-iface and --rx-iface go together: give both"),
    (["--rx-iface", "lo"], "--tx-iface and --rx-iface go together: give both"),
    (["--tx-iface", "nosuch0", "--rx-iface", "lo"], "--tx-iface 'nosuch0': no such interface in this namespace"),
    (["--tx-iface", "lo", "--rx-iface", "lo"], "--tx-iface and --rx-iface both name 'lo'"),
    (["--tx-iface", "a", "--rx-iface", "b", *ROUTER], "--tx-iface/--rx-iface replace the sandbox"),
    (["--next-hop-mac", "02:00:00:00:00:01"], "--next-hop-mac goes with --tx-iface and --rx-iface"),
    (["--remote", "me@@h1"], "--remote 'me@@h1' is not a host spec; use [user@]host[:port][=weight]"),
    (["--remote", "h1,-h2"], "--remote '-h2' is not a host spec"),
    (["--remote", "h1:70000"], "--remote 'h1:70000': port 70000 is out of range 1-65535"),
    (["--remote", "h1=0"], "--remote 'h1=0': weight 0 is out of range 1-1000"),
    (["--remote", "h1,h1"], "--remote 'h1,h1' names a host twice"),
    (["--remote", "h1", *ROUTER], "--remote replaces the sandbox: drop --topology router"),
    (["--remote", "h1", "--tx-iface", "a", "--rx-iface", "b"], "--remote reads on the remote host: drop --rx-iface"),
    (["--remote", "h1", "--tx-iface", "nosuch0"], "--tx-iface 'nosuch0': no such interface in this namespace"),
    (["--remote-addr", "198.18.1.2"], "--remote-addr goes with --remote: name the remote host too"),
    (["--remote", "h1", "--remote-addr", "h1"], "--remote-addr 'h1' is not an IPv4 address"),
    (["--remote", "h1,h2", "--remote-addr", "198.18.1.2"], "gives 1 addresses for 2 hosts; give one per host"),
]
"""The topology and device-under-test options every sending subcommand shares (cli/_options.add_device)."""

STREAM = ["--mode", "stream"]
SHAPES: list[tuple[list[str], str]] = [
    (["--sizes", "63"], "frame size 63 is out of range 64-65554"),
    (["--sizes", "64:7,594:x"], "size 594: weight 'x' is not an integer"),
    (["--sizes", "64,64"], "frame size 64 is given twice"),
    (["--sizes", "1518", "--mtu", "1000"], "frame size 1518 is too large at MTU 1000"),
    (["--vary", "ttl=1-64"], "--vary field 'ttl' is not one of sport, dport, src-ip, dst-ip, flow-label, vlan"),
    (["--vary", "sport="], "--vary sport: the range is empty"),
    (["--vary", "sport=2000-1000"], "--vary sport: range '2000-1000' is reversed"),
    (["--vary", "sport=1-9:often"], "--vary sport: mode 'often' is not inc or random"),
    (["--vary", "dport=1-9"], "--vary dport: range 1-9 is outside the allowed 5001-"),
    (["--vary", "dst-ip=198.18.0.2-198.18.0.9"], "--vary dst-ip: range 198.18.0.2-198.18.0.9 is outside the allowed"),
    (["--vary", "src-ip=10.0.0.1"], "--vary src-ip: range 10.0.0.1 is outside the allowed"),
    (["--vary", "flow-label=1-5"], "--vary flow-label needs IPv6"),
    (["--vary", "vlan=1-5"], "--vary vlan sets the 802.1Q tag's id: give --vlan ID too"),
    (["--vary", "sport=1-5", "--vary", "sport=6-9"], "--vary sport is given twice"),
    (["--vary", "sport=1-5:random", "--seed", "x"], "seed 'x'"),
]
"""Bad --sizes and --vary for a stream of packet-raw (compare --mode stream, send): issue 21's bad input."""

_FILES = Path(tempfile.mkdtemp(prefix="rawpacer-replay-input-"))
atexit.register(shutil.rmtree, _FILES, True)
GOOD = str(write_pcap(_FILES / "good.pcap", capture_frames(1, 2)))
BIG = str(write_pcap(_FILES / "big.pcap", [*capture_frames(1, 2), *capture_frames(1, 1, size=1600)]))
COOKED = str(write_pcap(_FILES / "cooked.pcap", capture_frames(1, 1), linktype=113))
(_FILES / "cut.pcap").write_bytes(Path(GOOD).read_bytes()[:-5])
(_FILES / "empty.pcap").write_bytes(b"")
REPLAY = [GOOD, "--rewrite"]
"""A replay that would run: a capture of two frames, rewritten onto the sandbox."""

BAD: dict[str, list[tuple[list[str], str]]] = {
    "compare": [
        (["--readers", "0"], "readers 0 is out of range; use 1-10000"),
        (["--readers", "100,x"], "readers 'x' is not an integer"),
        (["--readers", "100,10001"], "readers 10001 is out of range; use 1-10000"),
        (["--size", "0"], "size 0 is out of range; use 1-65507"),
        (["--size", "65508"], "size 65508 is out of range; use 1-65507"),
        (["--writers", "warp"], "writer 'warp' is unknown; use one of:"),
        (["--writers", "udp-sendto,udp-sendto"], "names a writer twice"),
        *DEVICE,
        (["--mtu", "67"], "mtu 67 is out of range; use 68-65536"),
        (["--mtu", "65537"], "mtu 65537 is out of range; use 68-65536"),
        (["--fit", "squeeze"], "fit 'squeeze' is not allowed; use one of: trim, fragment, strict"),
        (["--payload", "zeros"], "payload 'zeros' is not allowed; use one of: crypto, fast, fixed"),
        (["--mode", "burst"], "mode 'burst' is not allowed; use one of: fanout, stream"),
        (["--benchtime", "fast"], "benchtime 'fast' is not allowed"),
        (["--benchtime=-1s"], "benchtime '-1s' is not allowed"),
        (["--count", "0"], "count 0 is out of range; use 1-1000"),
        (["--json", "/nonexistent-dir/r.json"], "--json '/nonexistent-dir/r.json': directory '/nonexistent-dir'"),
        (["--plot", "/"], "--plot '/' is a directory"),
        (["--format", "csv"], "format 'csv' is not allowed; use one of: table, go"),
        (["--pcap", "/nonexistent-dir/x.pcap"], "--pcap '/nonexistent-dir/x"),
        (["--ipv6", "--mtu", "1279"], "mtu 1279 is out of range 1280-65536 for IPv6"),
        (["-6", "--with-go"], "--with-go runs the seed's own IPv4 job; drop -6"),
        (["--vlan", "4095", "--topology", "veth"], "vlan 4095 is out of range; use 1-4094"),
        (["--vlan", "0", "--topology", "veth"], "vlan 0 is out of range; use 1-4094"),
        (["--vlan", "5"], "--vlan 5 needs --topology veth or router"),
        (["--vlan", "5", "--topology", "veth", "--writers", "udp-sendto,packet-raw"], "udp-sendto cannot tag frames"),
        (["--vlan", "5", "--topology", "veth", "--writers", "ip-raw"], "ip-raw cannot tag frames"),
        (["--vlan-priority", "8"], "vlan priority 8 is out of range; use 0-7"),
        (["--rate", "10k"], "--rate 10k paces a stream; use it with --mode stream"),
        (["--mode", "stream", "--rate", "0"], "rate '0' is out of range"),
        (["--mode", "stream", "--rate=-5k"], "rate '-5k' is not allowed"),
        (["--mode", "stream", "--rate", "nan"], "rate 'nan' is not allowed"),
        (["--mode", "stream", "--rate", "10kbps"], "rate '10kbps' is not allowed"),
        (["--mode", "stream", "--rate", "10k", "--burst", "0"], "burst '0' is out of range; use an integer 1-1024"),
        (["--burst", "8"], "--burst, --pattern and --seed shape a paced stream; give --rate too"),
        (["--mode", "stream", "--rate", "1k", "--pattern", "bursty"], "pattern 'bursty' is not allowed"),
        (["--mode", "stream", "--rate", "1k", "--seed", "7"], "seed '7' applies to --pattern poisson only"),
        (["--mode", "stream", "--rate", "1k", "--spin", "busy"], "spin 'busy' is not allowed; use adaptive or full"),
        (["--spin", "full"], "--spin full says how a paced stream waits; give --rate too"),
        (["--mode", "stream", "--rate", "1k", "--catch-up", "0.5"], "catch-up '0.5' is out of range; use a factor"),
        (["--mode", "stream", "--rate", "1k", "--catch-up", "fast"], "catch-up 'fast' is not allowed; use a factor"),
        (["--catch-up", "burst"], "--catch-up burst says how a late paced stream catches up; give --rate too"),
        (["--mode", "stream", "--rate", "1k", "--with-go"], "--with-go runs the seed's unpaced job"),
        (
            ["--remote", "h1", "--writers", "udp-sendto,packet-raw"],
            "writers that build the link header (packet-raw) need --tx-iface",
        ),
        (["--remote", "h1", "--with-go"], "--with-go runs the seed's job on loopback; drop it with --remote"),
        (["--ci"], "--ci with count 1: a bootstrap interval needs --count 3 or more"),
        (["--ci", "--count", "2"], "--ci with count 2: a bootstrap interval needs --count 3 or more"),
        (["--hdr", "/etc/hostname"], "--hdr '/etc/hostname' is not a directory"),
        (["--hdr", "/nonexistent-dir/h"], "--hdr '/nonexistent-dir/h': directory '/nonexistent-dir' does not exist"),
        (["--hdr", "/proc"], "--hdr '/proc' cannot be written in '/proc'"),
        (["--sizes", "imix"], "--sizes shapes a stream; use it with --mode stream"),
        (["--vary", "sport=1-5", "--writers", "udp-sendto", *STREAM], "--vary sport: udp-sendto cannot stamp it"),
        (["--vary", "src-ip=198.18.0.9", "--writers", "ip-raw,udp-sendto", *STREAM], "udp-sendto cannot stamp it"),
        (["--sizes", "64", "--remote", "h1", "--writers", "udp-sendto", *STREAM], "do not count per size yet"),
        (["--sizes", "imix", "--pcap", "/tmp/x.pcap", "--writers", "packet-raw", *STREAM], "drop one"),
        (["--vary", "sport=1-9", "--fit", "fragment", "--writers", "packet-raw", *STREAM], "one frame per datagram"),
        (
            ["--sizes", "imix", "--writers", "udp-concurrent,xdp", *STREAM],
            "--sizes: udp-concurrent cannot send a frame pool; use udp-sendto, udp-sendmmsg, packet-raw, packet-ring, ip-raw",
        ),
        *(([*args, "--writers", "packet-raw", *STREAM], named) for args, named in SHAPES),
    ],
    "send": [
        (["--writer", "warp"], "writer 'warp' is unknown"),
        (["--readers", "10001"], "readers 10001 is out of range; use 1-10000"),
        (["--size", "0"], "size 0 is out of range; use 1-65507"),
        (["--payload", "zeros"], "payload 'zeros' is not allowed"),
        (["--fit", "squeeze"], "fit 'squeeze' is not allowed"),
        *DEVICE,
        (["--tx-iface", "a", "--rx-iface", "b", "--iface", "lo"], "--iface sends unchecked"),
        (["--mtu", "65537"], "mtu 65537 is out of range; use 68-65536"),
        (["--ops", "0"], "ops 0 is out of range; use 1-100000"),
        (
            ["--remote", "h1"],
            "--remote: writers that build the link header (packet-ring) need --tx-iface NAME, the interface toward the remote",
        ),
        (["-6", "--topology", "veth", "--mtu", "576"], "mtu 576 is out of range 1280-65536 for IPv6"),
        (["--vlan", "1", "--writer", "udp-sendmmsg", "--topology", "veth"], "udp-sendmmsg cannot tag frames"),
        (["--vlan-priority=-1"], "vlan priority -1 is out of range; use 0-7"),
        (["--rate", "fast"], "rate 'fast' is not allowed"),
        (["--rate", "1k", "--burst", "x"], "burst 'x' is not allowed"),
        (["--rate", "1k", "--pattern", "poisson", "--seed=-1"], "seed '-1' is not allowed"),
        (["--pattern", "poisson"], "give --rate too"),
        (["--seed", "3"], "give --rate too"),
        (["--spin", "full"], "--spin full says how a paced stream waits; give --rate too"),
        (["--rate", "1k", "--catch-up", "0"], "catch-up '0' is out of range; use a factor of 1 or more"),
        (["--pcap", "/nonexistent-dir/x.pcap"], "--pcap '/nonexistent-dir/x"),
        (["--iface", "lo", "--writer", "udp-sendto"], "--iface is for raw writers"),
        (["--sizes", "imix", "--writer", "scapy"], "--sizes: scapy cannot send a frame pool; use udp-sendto,"),
        (["--sizes", "imix", "--writer", "packet-raw", "--iface", "lo"], "--sizes and --vary shape a checked stream"),
        (["--vary", "vlan=1", "--writer", "ip-raw"], "--vary vlan: ip-raw cannot stamp it"),
        *(([*args, "--writer", "packet-raw"], named) for args, named in SHAPES),
        (["--iface", "lo", "--src-ip", "1.2.3"], "--iface needs --dst-ip"),
        (["--src-ip", "198.18.0.1"], "--src-ip, --dst-ip and --dst-mac go with --iface"),
        (["--dst-ip", "198.18.0.9"], "--src-ip, --dst-ip and --dst-mac go with --iface"),
        (["--dst-mac", "02:00:00:00:00:01"], "--src-ip, --dst-ip and --dst-mac go with --iface"),
        (
            ["--iface", "lo", "--src-ip", "1.2.3", "--dst-ip", "1.2.3.4", "--dst-mac", "02:00:00:00:00:01"],
            "src_ip '1.2.3' is not an IPv4 address",
        ),
        (
            ["--iface", "lo", "--src-ip", "1.2.3.4", "--dst-ip", "1.2.3.4", "--dst-mac", "02:00:00:00:00:01"]
            + ["--first-port", "65535", "--readers", "2"],
            "first port 65535 with 2 readers does not fit in 1-65535",
        ),
        (["--hdr", "/tmp"], "--hdr '/tmp' records paced gaps; give --rate too"),
        (["--rate", "1k", "--hdr", "/etc/hostname"], "--hdr '/etc/hostname' is not a directory"),
        (["--rate", "1k", "--hdr", "/sys/h"], "--hdr '/sys/h' cannot be written in '/sys'"),
    ],
    "rfc2544": [
        (["--writers", "warp"], "writer 'warp' is unknown"),
        (["--readers", "1,2"], "readers '1,2': give one count"),
        (["--remote", "h1", "--writers", "xdp"], "writers that build the link header (xdp) need --tx-iface"),
        *DEVICE,
        (["--mtu", "100"], "frame size"),
        (["--payload", "zeros"], "payload 'zeros' is not allowed"),
        (["-6", "--mtu", "1279"], "mtu 1279 is out of range 1280-65536 for IPv6"),
        (["--sizes", "64,46"], "frame size 46 cannot hold FCS+Ethernet+IPv4+UDP"),
        (["--sizes", "64,x"], "frame size 'x' is not allowed; use sizes like 64,128,1518, a named mix (imix)"),
        (["--sizes", "64,imx"], "frame size 'imx' is not allowed"),
        (["--sizes", "64:0,1518:1"], "size 64: weight 0 is out of range 1-1000000"),
        (
            ["--sizes", "64,imix", "--writers", "scapy", "--tests", "throughput"],
            "--sizes: a size mix's row sends a frame pool, which scapy cannot",
        ),
        (["--sizes", "imix", "--writers", "packet-raw"], "--sizes: a size mix's trials leave from a frame pool"),
        (["--tests", "speed"], "test 'speed' is not allowed"),
        (["--trial", "0s"], "trial '0s'"),
        (["--resolution", "50%"], "resolution '50%'"),
        (["--loss-tolerance", "0.5"], "loss tolerance '0.5'"),
        (["--loss-step", "90%"], "loss step '90%'"),
        (["--b2b-repeats", "0"], "back-to-back repeats '0'"),
        (["--latency-trials", "x"], "latency trials 'x'"),
        (["--warmup=-1s"], "warm-up '-1s'"),
        (["--drain", "soon"], "drain 'soon'"),
        (["--json", "/"], "--json '/' is a directory"),
        (["--plot", "/nonexistent-dir/p.png"], "--plot '/nonexistent-dir/p.png': directory"),
        (["--report", "/"], "--report '/' is a directory"),
        (["--search", "golden"], "search 'golden' is not allowed; use one of: binary, mlr"),
        (["--search", "mlr", "--pdr", "0"], "pdr '0' is out of range; use more than 0% and less than 100%"),
        (["--pdr", "100%"], "pdr '100%' is out of range"),
        (["--pdr", "half"], "pdr 'half' is not a number"),
        (["--repeat", "0"], "repeat '0' is not allowed; use a whole number 1-100"),
        (["--hdr", "/etc/hostname"], "--hdr '/etc/hostname' is not a directory"),
        (["--hdr", "/proc"], "--hdr '/proc' cannot be written in '/proc'"),
        (["--vary", "sport=1-9", "--writers", "udp-sendto"], "--vary sport: udp-sendto cannot stamp it"),
        (["--vary", "sport=1-9", "--writers", "packet-raw"], "the latency test cannot stamp"),
        (["--vary", "sport=1-9:random", "--seed=-3", "--writers", "packet-raw"], "seed '-3' is not allowed"),
        (["--vary", "sport=9-1", "--writers", "packet-raw"], "--vary sport: range '9-1' is reversed"),
    ],
    "agent": [
        ([], "agent needs --stdio: it is driven by a controller's messages on stdin"),
    ],
    "replay": [
        ([str(ROOT / "README.md"), "--rewrite"], "is not a pcap or pcapng file"),
        ([str(_FILES / "empty.pcap"), "--rewrite"], "empty"),
        ([str(_FILES / "cut.pcap"), "--rewrite"], "is truncated at frame 1, byte offset"),
        ([COOKED, "--rewrite"], "link type 113"),
        ([str(_FILES / "none.pcap"), "--rewrite"], "none.pcap"),
        ([GOOD], "only --tx-iface allows; add --rewrite"),
        ([*REPLAY, "--writer", "udp-sendto"], "udp-sendto cannot send prebuilt frames"),
        ([*REPLAY, "--writer", "warp"], "writer 'warp' is unknown"),
        ([*REPLAY, "--fit", "squeeze"], "fit 'squeeze' is not allowed"),
        ([BIG, "--rewrite", "--topology", "veth", "--fit", "strict"], "frame 2 carries a 1628-byte packet"),
        *(([*REPLAY, *args], named) for args, named in DEVICE),
        ([*REPLAY, "--mtu", "65537"], "mtu 65537 is out of range; use 68-65536"),
        ([*REPLAY, "--vlan", "4095", "--topology", "veth"], "vlan 4095 is out of range; use 1-4094"),
        ([*REPLAY, "--vlan-priority", "8"], "vlan priority 8 is out of range; use 0-7"),
        ([*REPLAY, "--timing", "warp"], "timing 'warp' is not allowed"),
        ([*REPLAY, "--speed", "0"], "speed '0' is out of range"),
        ([*REPLAY, "--rate", "0"], "rate '0' is out of range"),
        ([*REPLAY, "--rate", "1k", "--topspeed"], "--rate and --topspeed both set the timing"),
        ([*REPLAY, "--loop", "0"], "loop '0' is out of range"),
        ([*REPLAY, "--spin", "warp"], "spin 'warp' is not allowed; use adaptive or full"),
        ([*REPLAY, "--spin", "full", "--topspeed"], "--spin says how a paced replay waits; drop it with --topspeed"),
        ([*REPLAY, "--catch-up", "nan"], "catch-up 'nan' is out of range; use a factor of 1 or more"),
        ([*REPLAY, "--catch-up", "2", "--topspeed"], "--catch-up says how a late paced replay catches up; drop it"),
        ([*REPLAY, "--limit", "0"], "limit '0' is not allowed"),
        ([*REPLAY, "--cpu", "first"], "--cpu 'first' is not a CPU number; this process may use CPUs 0"),
        ([*REPLAY, "--cpu", "4096"], "--cpu 4096 is not a CPU this process may use; use one of 0"),
        ([*REPLAY, "--json", "/"], "--json '/' is a directory"),
        ([*REPLAY, "--plot", "/"], "--plot '/' is a directory"),
        ([GOOD, "--plot", str(_FILES / "timing.png")], "--plot draws what the readers received: add --rewrite"),
    ],
    "doctor": [
        (["--writer", "warp"], "writer 'warp' is unknown"),
        (["--remote", "no host!"], "--remote 'no host!' is not a host spec"),
        (["--remote", "h1,h2", "--remote-addr", "198.18.1.2"], "gives 1 addresses for 2 hosts"),
    ],
}
FLAGS = {"-h", "--help", "--with-go", "--debug", "--ipv6", "--stdio", "--topspeed", "--rewrite"}
"""Options that take no value: nothing to get wrong."""

CASES = [(command, args, named) for command, cases in BAD.items() for args, named in cases]


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    """The long option strings a parser accepts, flags without a value excluded."""
    found = set()
    for action in parser._actions:
        found.update(s for s in action.option_strings if s.startswith("--") and s not in FLAGS)
    return found


def test_the_table_covers_every_option_of_every_subcommand():
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in subparsers.choices.items():
        covered = {arg.split("=")[0] for args, _ in BAD.get(command, []) for arg in args if arg.startswith("--")}
        assert options_of(parser) <= covered, f"{command}: no bad-input case for {options_of(parser) - covered}"


@pytest.mark.parametrize(("command", "args", "named"), CASES, ids=[f"{c} {' '.join(a)}" for c, a, _ in CASES])
def test_bad_value_is_one_line_exit_2_and_creates_nothing(command, args, named, monkeypatch):
    def started(self: Sandbox) -> None:
        raise AssertionError(f"{command} {args} passed its checks: a run would start")

    monkeypatch.setattr(Sandbox, "__enter__", started)
    code, err = run_cli([command, *args])
    assert code == 2, err
    assert named in err and err.count("\n") == 1 and err.startswith("rawpacer: ")
    assert pid_namespaces() == []


def test_one_subprocess_smoke_run_says_the_same():
    done = subprocess.run(
        [sys.executable, "-m", "rawpacer.cli", "compare", "--mtu", "67"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr, done.stdout) == (2, "rawpacer: mtu 67 is out of range; use 68-65536\n", "")
