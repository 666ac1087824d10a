"""The device under test in a real router sandbox: every profile installed by apply() and seen in the
kernel, streams through it losing what its counters say they dropped, the diagnosis naming it, and
setup failures refused in one line with the namespaces still removed."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import subprocess
from dataclasses import dataclass

import pytest
from helpers import make_writer, udp_family, udp_roundtrip
from pyroute2 import IPRoute

from rawpacer import diagnose, dut
from rawpacer.bench.oploop import OpLoop, Outcome
from rawpacer.errors import DutSetupError
from rawpacer.messages import MessageSource
from rawpacer.pacing import ConstantSchedule, Pacer
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Sandbox, owned

READERS, SIZE = 10, 1000
"""Each stream: one datagram of SIZE bytes per reader per fan-out."""

HANDFUL = 5
"""How far a drop counter may be from the readers' loss (a datagram in flight when either was read)."""

IP_MTU_DISCOVER, IP_PMTUDISC_DO, IPV6_DONTFRAG = 10, 2, 62
"""include/uapi/linux/in.h and in6.h: never fragment locally (DF set on IPv4); Python's socket lacks them."""


def install(topo, *specs: str, script: tuple[str, ...] = ()) -> list[str]:
    """The profiles ``specs`` and the script lines, applied in the sandbox's DUT."""
    return dut.apply(topo.dut_ns, topo.dut_in, topo.dut_out, dut.parse_profiles(specs), script)


def nft(topo, *args: str) -> list[dict]:
    """``nft -j ARGS`` run in the DUT's namespace: its objects."""
    with topo.enter("dut"):
        done = subprocess.run(("nft", "-j", *args), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["nftables"]


def rules(topo, chain: str = "forward") -> list[dict]:
    """The rules of one of rawpacer's chains in the DUT, in chain order."""
    return [item["rule"] for item in nft(topo, "list", "chain", "inet", "rawpacer", chain) if "rule" in item]


def qdiscs(topo, ifname: str) -> list[str]:
    """The qdisc kinds on one of the DUT's links."""
    with topo.enter("dut"), IPRoute() as ipr:
        return [msg.get_attr("TCA_KIND") for msg in ipr.get_qdiscs(index=ipr.link_lookup(ifname=ifname)[0])]


@dataclass
class Run:
    """A stream through the DUT: what the readers saw, and the counters before and after it."""

    outcome: Outcome
    before: diagnose.Counters
    after: diagnose.Counters

    @property
    def lost(self) -> int:
        return self.outcome.result.counts.lost

    @property
    def moved(self) -> dict[str, int]:
        return diagnose.delta(self.before, self.after)

    def why(self) -> str:
        return diagnose.explain(self.before, self.after, self.lost)


def paced_stream(topo, pps: int, fanouts: int, writer: str = "udp-sendmmsg") -> Run:
    """``fanouts`` fan-outs to READERS readers, paced at ``pps`` datagrams/s so the writer's side never
    overflows a backlog: whatever is lost, the DUT lost."""
    with (
        ReaderSet(topo, READERS, SIZE) as readers,
        make_writer(topo, writer, readers.ports, message_size=SIZE) as sender,
    ):
        before = diagnose.snapshot_of(topo)
        loop = OpLoop(sender, readers, MessageSource.make("fast", SIZE), Pacer(ConstantSchedule(pps, 1)))
        outcome = loop.stream(fanouts)
        after = diagnose.snapshot_of(topo)
    assert outcome.sent == READERS * fanouts
    return Run(outcome, before, after)


# --- every profile, installed and seen in the kernel ----------------------------------------------


def test_tbf_is_the_egress_qdisc():
    with Sandbox("router") as topo:
        assert install(topo, "tbf:20mbit,burst=64kb") == [
            "tc qdisc replace dev rpd1 root tbf rate 20mbit burst 65536 latency 20ms"
        ]
        assert qdiscs(topo, "rpd1") == ["tbf"]
        assert "tbf" not in qdiscs(topo, "rpd0")
        with topo.enter("dut"):
            shown = subprocess.run(("tc", "qdisc", "show", "dev", "rpd1"), capture_output=True, text=True, check=True)
        assert "rate 20Mbit burst 64Kb" in shown.stdout


BYTE_LIMIT = {"rate": 12500000, "burst": 0, "per": "second", "inv": True, "rate_unit": "bytes", "burst_unit": "bytes"}
NUMGEN = {"numgen": {"mode": "random", "mod": 1000, "offset": 0}}


@pytest.mark.parametrize(
    ("spec", "expr", "comments"),
    [
        ("police:5kpps", {"limit": {"rate": 5000, "burst": 50, "per": "second", "inv": True}}, ["rawpacer police"]),
        ("police:100mbit", {"limit": BYTE_LIMIT}, ["rawpacer police"]),
        ("drop:0.001", {"match": {"op": "<", "left": NUMGEN, "right": 1}}, ["rawpacer drop"]),
        ("rules:100", {"counter": {"packets": 0, "bytes": 0}}, ["rawpacer rules"]),
        (
            "conntrack",
            {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}},
            ["rawpacer conntrack invalid", "rawpacer conntrack established", "rawpacer conntrack new"],
        ),
    ],
)
def test_each_nft_profile_is_in_the_dut_table(spec, expr, comments):
    with Sandbox("router") as topo:
        assert install(topo, spec) == [dut.parse_profile(spec).commands("rpd0", "rpd1")[0].line]
        chain = rules(topo)
        assert [rule["comment"] for rule in chain] == comments
        assert chain[0]["expr"][0] == expr
        assert all({"counter": {"packets": 0, "bytes": 0}} in rule["expr"] for rule in chain)
        (table,) = [item["table"] for item in nft(topo, "list", "tables") if "table" in item]
        assert (table["family"], table["name"]) == ("inet", "rawpacer")


def test_rules_fill_the_scan_chain():
    with Sandbox("router") as topo:
        install(topo, "rules:10000")
        scan = rules(topo, "scan")
        assert len(scan) == 10000
        assert scan[-1]["expr"] == [{"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 10000}}]
        assert rules(topo)[0]["expr"][1] == {"jump": {"target": "scan"}}


def test_every_profile_composes_in_one_table_in_chain_order():
    with Sandbox("router") as topo:
        lines = install(topo, "conntrack", "rules:10", "drop:0.5", "police:1kpps", "tbf:1gbit")
        assert [line.split()[0] for line in lines] == ["tc", "nft", "nft", "nft", "nft"]
        assert [rule["comment"] for rule in rules(topo)] == [
            "rawpacer police",
            "rawpacer drop",
            "rawpacer rules",
            "rawpacer conntrack invalid",
            "rawpacer conntrack established",
            "rawpacer conntrack new",
        ]
        assert qdiscs(topo, "rpd1") == ["tbf"]


# --- streams through the DUT: the loss, the counter, the diagnosis --------------------------------


@pytest.mark.parametrize("ip_version", [4, 6])
def test_a_shaped_stream_loses_what_the_tbf_dropped(ip_version):
    with Sandbox("router", ip_version=ip_version) as topo:
        install(topo, "tbf:5mbit")
        run = paced_stream(topo, pps=20_000, fanouts=300)  # 160 Mbit/s of payload into 5 Mbit/s (40 if the
        # host is so loaded that the stream leaves at a quarter of its rate: still most of it lost)
    drops = run.moved["dut.qdisc.rpd1.tbf.drops"]
    assert run.lost > run.outcome.sent // 2
    assert abs(drops - run.lost) <= HANDFUL, (drops, run.lost)
    assert (
        0 <= run.moved["dut.qdisc.rpd1.tbf.packets"] - run.outcome.result.counts.delivered <= HANDFUL
    )  # IPv6: the DUT's own MLD reports
    assert run.why().startswith(f"the DUT's tbf on rpd1 dropped {drops:,} (qdisc drops)")
    unexplained = run.lost - drops - run.moved.get("Udp.RcvbufErrors", 0) - run.moved.get("Udp6.RcvbufErrors", 0)
    assert run.why().endswith(f"; {unexplained:,} not attributed to any counter") == (unexplained > 0)


def test_a_raw_writer_is_shaped_the_same():
    with Sandbox("router") as topo:
        install(topo, "tbf:20mbit")
        run = paced_stream(topo, pps=20_000, fanouts=200, writer="packet-raw")
    assert run.lost > 0 and abs(run.moved["dut.qdisc.rpd1.tbf.drops"] - run.lost) <= HANDFUL


def test_police_drops_are_counted_by_its_rule():
    with Sandbox("router") as topo:
        install(topo, "police:500pps")  # its bucket holds one second of the rate (nft_limit)
        run = paced_stream(topo, pps=10_000, fanouts=200)
    drops = run.moved["dut.nft.rawpacer police.drops"]
    assert run.lost > run.outcome.sent // 2
    assert abs(drops - run.lost) <= HANDFUL, (drops, run.lost)
    assert run.why().startswith(f"nftables rule 'rawpacer police' on the DUT dropped {drops:,}")


def test_a_byte_policer_counts_ip_bytes():
    with Sandbox("router") as topo:
        install(topo, "police:8mbit")
        run = paced_stream(topo, pps=10_000, fanouts=300)  # 3 MB offered; the bucket holds 1 s of 1 MB/s
    drops, dropped_bytes = run.moved["dut.nft.rawpacer police.drops"], run.moved["dut.nft.rawpacer police.bytes"]
    assert run.lost > 0 and abs(drops - run.lost) <= HANDFUL
    assert dropped_bytes == drops * (SIZE + 8 + 20)  # the IP packet: UDP header and IPv4 header, no Ethernet


def test_a_random_drop_is_counted_by_its_rule():
    with Sandbox("router") as topo:
        install(topo, "drop:0.2")
        run = paced_stream(topo, pps=10_000, fanouts=200)
    drops = run.moved["dut.nft.rawpacer drop.drops"]
    assert drops == run.lost
    assert 250 < drops < 550  # 2000 datagrams at 0.2: 400 expected, 18 the standard deviation
    assert run.why().startswith(f"nftables rule 'rawpacer drop' on the DUT dropped {drops:,}")


def test_conntrack_and_a_rule_scan_forward_everything():
    with Sandbox("router") as topo:
        install(topo, "rules:1000", "conntrack")
        run = paced_stream(topo, pps=10_000, fanouts=100)
    assert run.lost == 0 and run.outcome.result.counts.intact == run.outcome.sent
    assert run.moved["dut.nft.rawpacer rules.packets"] == run.outcome.sent
    # A one-way UDP flow stays NEW until a reply is seen (nf_conntrack_proto_udp.c).
    assert run.moved["dut.nft.rawpacer conntrack new.packets"] == run.outcome.sent
    assert run.moved["dut.Ip.ForwDatagrams"] == run.outcome.sent


@pytest.mark.parametrize("ip_version", [4, 6])
def test_a_datagram_over_the_egress_mtu_is_diagnosed(ip_version):
    """DF set (IPv4) or IPv6, where routers never fragment, and the writer never fragments either
    (IP_PMTUDISC_DO, IPV6_DONTFRAG): the DUT drops the first datagram and says why; the ICMP error
    teaches the writer the path MTU, so the next ones are refused at the socket (EMSGSIZE)."""
    with Sandbox("router", ip_version=ip_version, egress_mtu=1280) as topo:
        with topo.enter("reader"):
            reader = socket.socket(udp_family(topo), socket.SOCK_DGRAM)
            reader.bind((topo.reader_ip, 5001))
        with topo.enter("writer"):
            writer = socket.socket(udp_family(topo), socket.SOCK_DGRAM)
        with reader, writer:
            if ip_version == 4:
                writer.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            else:
                writer.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1)
            before = diagnose.snapshot_of(topo)
            writer.sendto(b"d" * 1400, (topo.reader_ip, 5001))
            with pytest.raises(OSError) as refused:  # the ICMP error taught the writer the path MTU
                for _ in range(50):
                    writer.sendto(b"d" * 1400, (topo.reader_ip, 5001))
            assert refused.value.errno == errno.EMSGSIZE
            after = diagnose.snapshot_of(topo)
    why = diagnose.explain(before, after, lost=1)
    if ip_version == 4:
        assert why.startswith("the DUT needed fragmentation with DF set: 1 dropped")
        assert "IcmpMsg.OutType3 1" in why
    else:
        assert why.startswith("IPv6 Packet Too Big at the DUT: 1 datagram(s) larger than its egress MTU dropped and 1")
    assert "not attributed" not in why


# --- snapshots -------------------------------------------------------------------------------------


def test_a_snapshot_without_profiles_sees_the_forwarding():
    with Sandbox("router") as topo:
        before = dut.snapshot(topo.dut_ns, topo.dut_in, topo.dut_out)
        assert udp_roundtrip(topo, 500) == b"r" * 500
        after = dut.snapshot(topo.dut_ns, topo.dut_in, topo.dut_out)
    assert not [key for key in after if key.startswith("dut.nft.")]
    assert "dut.qdisc.rpd1.noqueue.drops" in after and "gauge.dut.qdisc.rpd1.noqueue.qlen" in after
    moved = dut.counters.counts(before, after)
    assert moved["dut.Ip.ForwDatagrams"] == 1
    assert moved["dut.link.rpd0.rx_packets"] == 1 and moved["dut.link.rpd1.tx_packets"] == 1


def test_a_snapshot_works_inside_a_running_event_loop():
    """As in a Jupyter cell, where pyroute2's own loop cannot start."""

    async def cell(topo) -> dict[str, int]:
        return dut.snapshot(topo.dut_ns, topo.dut_in, topo.dut_out)

    with Sandbox("router") as topo:
        assert "dut.qdisc.rpd1.noqueue.drops" in asyncio.run(cell(topo))


def test_without_nft_installed_a_snapshot_has_no_nft_counters(monkeypatch, tmp_path):
    with Sandbox("router") as topo:
        install(topo, "drop:0.5")
        assert "dut.nft.rawpacer drop.drops" in dut.snapshot(topo.dut_ns, topo.dut_in, topo.dut_out)
        monkeypatch.setenv("PATH", str(tmp_path))
        counters = dut.snapshot(topo.dut_ns, topo.dut_in, topo.dut_out)
    assert counters and not [key for key in counters if key.startswith("dut.nft.")]


# --- failures ---------------------------------------------------------------------------------------


def test_a_failing_script_line_is_named_and_the_namespaces_still_go():
    with pytest.raises(DutSetupError) as caught, Sandbox("router") as topo:
        install(topo, "tbf:20mbit", script=("true", "tc qdisc add dev {out} root nosuchqdisc", "touch /never"))
    message = str(caught.value)
    assert message.startswith(
        "DUT setup line 3 (tc qdisc add dev rpd1 root nosuchqdisc) failed with exit status 2: "
        "Error: Specified qdisc kind is unknown."
    ), message
    assert caught.value.exit_code == 2 and "\n" not in message
    assert not set(topo.namespaces) & set(owned())


def test_a_failing_profile_line_says_what_the_tool_said():
    with Sandbox("router") as topo, pytest.raises(DutSetupError) as caught:
        dut.apply(topo.dut_ns, "rpd0", "nosuch0", dut.parse_profiles(["tbf:1mbit"]), ())
    assert str(caught.value).startswith(
        "DUT setup line 1 (tc qdisc replace dev nosuch0 root tbf rate 1mbit burst 32768 latency 20ms) failed with "
        "exit status 1: Cannot find device"
    )


def test_a_missing_binary_names_its_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with Sandbox("router") as topo, pytest.raises(DutSetupError) as caught:
        install(topo, "police:1kpps")
    assert str(caught.value) == (
        "DUT setup line 1 (nft -f /dev/stdin < ruleset of 1 rule) needs nft, which is not installed; "
        "install the Debian package nftables"
    )


def test_a_script_line_runs_in_the_duts_namespace_through_a_shell():
    with Sandbox("router") as topo:
        install(topo, script=("ip link show {out} | grep -q rpd1 && ip addr add 198.19.0.253/24 dev {out}",))
        with topo.enter("dut"), IPRoute() as ipr:
            addresses = {msg.get_attr("IFA_ADDRESS") for msg in ipr.get_addr(label="rpd1")}
    assert "198.19.0.253" in addresses
