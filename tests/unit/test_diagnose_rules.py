"""The diagnosis table on synthetic counter deltas: every rule fires on its counters and only then."""

from __future__ import annotations

import pytest

from rawpacer.diagnose import RULES, Evidence, findings
from rawpacer.diagnose.rules import NONE_MOVED, explain_evidence

ARRIVED = {"link.rpr0.rx_packets": 3, "Ip.InReceives": 3}
"""Frames reached the interface and IP: the baseline every IPv4 cause below starts from."""

CASES: dict[str, tuple[dict[str, int], int]] = {
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
    assert sentence == next(r for r in RULES if r.cause == cause).says.format(n=count, off="none")


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
