"""The diagnosis table on synthetic counter deltas: every rule fires on its counters and only then,
the device under test's rows name what dropped, and the accounting says what no counter explains."""

from __future__ import annotations

import pytest

from rawpacer.diagnose import RULES, Evidence, attributed, findings
from rawpacer.diagnose.rules import NONE_MOVED, explain_evidence

ARRIVED = {"link.rpr0.rx_packets": 3, "Ip.InReceives": 3}
"""Frames reached the interface and IP: the baseline every IPv4 cause below starts from."""

CASES: dict[str, tuple[dict[str, int], int]] = {
    "dut-qdisc": ({**ARRIVED, "dut.qdisc.rpd1.tbf.drops": 14069, "dut.qdisc.rpd1.tbf.packets": 9}, 14069),
    "dut-nftables": ({**ARRIVED, "dut.nft.rawpacer police.drops": 7, "dut.nft.rawpacer police.packets": 7}, 7),
    "dut-not-forwarding": ({**ARRIVED, "dut.Ip.InAddrErrors": 4}, 4),
    "dut-no-route": ({**ARRIVED, "dut.IpExt.InNoRoutes": 5, "dut.Ip6.InNoRoutes": 1}, 6),
    "dut-ttl": ({**ARRIVED, "dut.Icmp.OutTimeExcds": 2, "dut.Ip.InHdrErrors": 2}, 2),
    "dut-header": ({**ARRIVED, "dut.Ip6.InHdrErrors": 3}, 3),
    "dut-fragmentation-needed": ({**ARRIVED, "dut.Ip.FragFails": 8, "dut.IcmpMsg.OutType3": 8}, 8),
    "dut-packet-too-big": ({**ARRIVED, "dut.Ip6.InTooBigErrors": 9, "dut.Icmp6.OutPktTooBigs": 9}, 9),
    "dut-link": ({**ARRIVED, "dut.link.rpd1.tx_dropped": 2, "dut.link.rpd0.rx_packets": 3}, 2),
    "dut-fragmented": ({**ARRIVED, "dut.Ip.FragOKs": 3, "dut.Ip.FragCreates": 6}, 3),
    "ip-checksum": ({**ARRIVED, "Ip.InCsumErrors": 2, "Ip.InHdrErrors": 2}, 2),
    "udp-checksum": ({**ARRIVED, "Udp.InCsumErrors": 1}, 1),
    "no-socket": ({**ARRIVED, "Udp6.NoPorts": 3}, 3),
    "receive-buffer": ({**ARRIVED, "Udp.RcvbufErrors": 3}, 3),
    "socket-memory": ({**ARRIVED, "Udp.MemErrors": 1}, 1),
    "backlog": ({**ARRIVED, "Softnet.Dropped": 7}, 7),
    "wrong-mac": ({"link.rpr0.rx_packets": 4, "link.rpr0.rx_otherhost_dropped": 4}, 4),
    "martian": ({**ARRIVED, "Ip.InDelivers": 1, "rt_cache.in_martian_src": 2}, 2),
    "reassembly": ({**ARRIVED, "Ip.ReasmFails": 1, "Ip.ReasmReqds": 2, "Ip.ReasmOKs": 1}, 1),
    "wrong-address": ({**ARRIVED, "Ip.InAddrErrors": 3}, 3),
    "nothing-arrived": ({}, 1),
}
"""Per cause: counters that moved, and how many datagrams the cause accounts for."""


def test_every_rule_has_a_case():
    assert [rule.cause for rule in RULES] == list(CASES)


@pytest.mark.parametrize("cause", list(CASES))
def test_each_rule_fires_on_its_own_counters_alone(cause):
    moved, count = CASES[cause]
    evidence = Evidence(moved)
    assert [(rule.cause, rule.count(evidence)) for rule in RULES if rule.count(evidence) > 0] == [(cause, count)]
    (sentence,) = findings(evidence)
    rule = next(r for r in RULES if r.cause == cause)
    assert sentence == rule.says.format(n=count, off="none", what=rule.what(evidence) if rule.what else "")


def test_a_healthy_run_explains_nothing():
    evidence = Evidence({**ARRIVED, "Ip.InDelivers": 3, "Udp.InDatagrams": 3})
    assert findings(evidence) == [] and explain_evidence(evidence) == NONE_MOVED


def test_martian_names_the_sysctls_that_are_off():
    evidence = Evidence({**ARRIVED}, sysctls_off=("net/ipv4/conf/lo/accept_local",))
    (sentence,) = findings(evidence)
    assert sentence.startswith("martian drop: 3") and "off now: net.ipv4.conf.lo.accept_local" in sentence


def test_wrong_mac_without_otherhost_counter_is_rx_without_ip():
    assert findings(Evidence({"link.rpr0.rx_packets": 2}))[0].startswith("wrong destination MAC: 2")


def test_several_causes_are_all_named_in_table_order():
    text = explain_evidence(Evidence({**ARRIVED, "Udp.NoPorts": 1, "Udp.RcvbufErrors": 2}))
    assert text.index("no socket on the port: 1") < text.index("receive buffers full: 2")


@pytest.mark.parametrize(
    ("moved", "sentence"),
    [
        ({"dut.qdisc.rpd1.tbf.drops": 14069}, "the DUT's tbf on rpd1 dropped 14,069 (qdisc drops)"),
        (
            {"dut.qdisc.rpd1.tbf.drops": 14000, "dut.qdisc.rpd0.pfifo@10.drops": 69},
            "the DUT's pfifo@10 on rpd0 (69) and tbf on rpd1 (14,000) dropped 14,069 (qdisc drops)",
        ),
        (
            {"dut.nft.rawpacer police.drops": 1234},
            "nftables rule 'rawpacer police' on the DUT dropped 1,234 (nftables rule counters)",
        ),
        (
            {"dut.nft.rawpacer drop.drops": 5, "dut.nft.rawpacer police.drops": 1},
            "nftables rules 'rawpacer drop' (5) and 'rawpacer police' (1) on the DUT dropped 6 (nftables rule counters)",
        ),
        ({"dut.link.rpd1.tx_dropped": 2}, "the DUT's links dropped 2 (rpd1 tx_dropped; rtnl_link_stats64)"),
    ],
)
def test_dut_rows_name_what_dropped(moved, sentence):
    assert findings(Evidence({**ARRIVED, **moved}))[0] == sentence


def test_fragmentation_needed_names_the_icmp_errors_sent():
    (sentence,) = findings(Evidence({**ARRIVED, "dut.Ip.FragFails": 1200, "dut.IcmpMsg.OutType3": 1100}))
    assert sentence.startswith("the DUT needed fragmentation with DF set: 1,200 dropped")
    assert "IcmpMsg.OutType3 1,100" in sentence


def test_fragmenting_is_information_not_a_loss():
    evidence = Evidence({**ARRIVED, "dut.Ip.FragOKs": 3, "dut.Ip.FragCreates": 6})
    assert findings(evidence) == [
        "the DUT fragmented 3 datagram(s) into 6 fragments (Ip FragOKs/FragCreates; information, not a loss)"
    ]
    assert attributed(evidence) == 0
    assert explain_evidence(evidence, lost=2).endswith("; 2 not attributed to any counter")


def test_expired_ttls_beyond_the_icmp_rate_limit_are_header_errors_not_counted_twice():
    evidence = Evidence({**ARRIVED, "dut.Icmp.OutTimeExcds": 1000, "dut.Ip.InHdrErrors": 5000})
    ttl, header = findings(evidence)
    assert ttl.startswith("TTL / hop limit exceeded at the DUT: 1,000 datagram(s)")
    assert header.startswith("the DUT dropped 4,000 datagram(s) with a bad IP header, or whose TTL")
    assert attributed(evidence) == 5000


def test_dut_causes_come_before_the_readers():
    text = explain_evidence(Evidence({**ARRIVED, "Udp.RcvbufErrors": 2, "dut.qdisc.rpd1.tbf.drops": 3}))
    assert text.index("the DUT's tbf on rpd1 dropped 3") < text.index("receive buffers full: 2")


def test_losses_the_counters_explain_in_full_add_nothing():
    evidence = Evidence({**ARRIVED, "Udp.RcvbufErrors": 2, "dut.qdisc.rpd1.tbf.drops": 3})
    assert attributed(evidence) == 5
    assert explain_evidence(evidence, lost=5) == explain_evidence(evidence)
    assert explain_evidence(evidence, lost=4) == explain_evidence(evidence)


def test_losses_beyond_the_counters_are_said_to_be_unattributed():
    evidence = Evidence({**ARRIVED, "Udp.RcvbufErrors": 2, "dut.nft.rawpacer drop.drops": 3})
    assert explain_evidence(evidence, lost=1005).endswith("; 1,000 not attributed to any counter")


def test_nothing_moved_with_losses_says_both():
    evidence = Evidence({**ARRIVED, "Ip.InDelivers": 3})
    assert explain_evidence(evidence, lost=7) == NONE_MOVED + "; 7 not attributed to any counter"
    assert explain_evidence(evidence, lost=0) == NONE_MOVED


def test_nothing_arrived_is_a_flag_not_a_loss():
    evidence = Evidence({})
    assert attributed(evidence) == 0
    assert explain_evidence(evidence, lost=3).endswith("; 3 not attributed to any counter")


def test_dut_counts_without_drops_are_no_cause():
    evidence = Evidence({**ARRIVED, "dut.qdisc.rpd1.tbf.packets": 100, "dut.nft.rawpacer rules.packets": 100})
    assert findings(evidence) == []
