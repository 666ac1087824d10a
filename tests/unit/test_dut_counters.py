"""The DUT's counters as read from nft's JSON and netlink qdiscs: names, sums per comment, drops only
where the counter counts them, and deltas that leave gauges out."""

from __future__ import annotations

from rawpacer.diagnose import Counters, delta
from rawpacer.dut.counters import counts, nft_counters, qdisc_names


def rule(comment: str | None, *expr: dict) -> dict:
    body = {"family": "inet", "table": "rawpacer", "chain": "forward", "handle": 2, "expr": list(expr)}
    return {"rule": body | ({"comment": comment} if comment is not None else {})}


def counter(packets: int, octets: int) -> dict:
    return {"counter": {"packets": packets, "bytes": octets}}


MATCH = {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 1}}
LIMIT = {"limit": {"rate": 50000, "burst": 5, "per": "second", "inv": True}}
DROP = {"drop": None}
ACCEPT = {"accept": None}


def test_rules_with_a_counter_and_a_comment_are_counted_per_comment():
    objects = [
        {"metainfo": {"version": "1.0.6"}},
        {"chain": {"family": "inet", "table": "rawpacer", "name": "forward"}},
        rule("rawpacer police", LIMIT, counter(5, 7140), DROP),
        rule("rawpacer conntrack new", MATCH, counter(10, 14280), ACCEPT),
        rule("rawpacer conntrack new", MATCH, counter(1, 1428), ACCEPT),
    ]
    assert nft_counters(objects) == {
        "dut.nft.rawpacer police.packets": 5,
        "dut.nft.rawpacer police.bytes": 7140,
        "dut.nft.rawpacer police.drops": 5,
        "dut.nft.rawpacer conntrack new.packets": 11,
        "dut.nft.rawpacer conntrack new.bytes": 15708,
    }


def test_rules_without_a_comment_or_a_counter_are_left_out():
    objects = [rule(None, MATCH, counter(3, 3), DROP), rule("x", MATCH, DROP), rule("y", {"counter": "named"}, DROP)]
    assert nft_counters(objects) == {}


def test_a_counter_ahead_of_the_match_counts_no_drops():
    assert nft_counters([rule("user", counter(9, 90), MATCH, DROP)]) == {
        "dut.nft.user.packets": 9,
        "dut.nft.user.bytes": 90,
    }


def test_a_logged_drop_still_counts_its_drops():
    logged = rule("user", MATCH, counter(2, 20), {"log": {"prefix": "x"}}, DROP)
    assert nft_counters([logged])["dut.nft.user.drops"] == 2


def test_qdiscs_are_named_by_kind_or_kind_and_handle_when_a_link_has_two():
    assert qdisc_names([("tbf", 0x80010000)]) == ["tbf"]
    assert qdisc_names([("htb", 0x10000), ("pfifo", 0x100000), ("pfifo", 0x200000)]) == ["htb", "pfifo@10", "pfifo@20"]


def test_gauges_never_enter_a_delta():
    before = {"dut.qdisc.rpd1.tbf.drops": 1, "gauge.dut.qdisc.rpd1.tbf.backlog": 3000}
    after = {"dut.qdisc.rpd1.tbf.drops": 5, "gauge.dut.qdisc.rpd1.tbf.backlog": 0, "dut.Ip.ForwDatagrams": 4}
    assert counts(before, after) == {"dut.qdisc.rpd1.tbf.drops": 4, "dut.Ip.ForwDatagrams": 4}


def test_the_readers_delta_carries_the_duts_with_their_names():
    before = Counters({"Udp.InDatagrams": 1}, {}, {}, dut={"dut.Ip.ForwDatagrams": 10, "gauge.dut.x.qlen": 2})
    after = Counters({"Udp.InDatagrams": 4}, {}, {}, dut={"dut.Ip.ForwDatagrams": 13, "gauge.dut.x.qlen": 9})
    assert delta(before, after) == {"Udp.InDatagrams": 3, "dut.Ip.ForwDatagrams": 3}


def test_without_a_dut_the_delta_is_the_readers_alone():
    assert delta(Counters({"Ip.InReceives": 1}, {}, {}), Counters({"Ip.InReceives": 2}, {}, {})) == {"Ip.InReceives": 1}
