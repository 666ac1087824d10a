"""--dut profiles: every spec parsed into its parameters and rendered to the exact argv and nft ruleset
it runs; every bad spec refused with one line naming the value and what is allowed."""

from __future__ import annotations

import time

import pytest

from rawpacer.dut import PROFILES, Command, parse_profile, parse_profiles
from rawpacer.dut.profiles import Conntrack, Drop, Police, Rules, Tbf, nft_ruleset
from rawpacer.errors import UsageError

HEAD = "table inet rawpacer {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
TAIL = "\t}\n}\n"


def forward(*rules: str) -> str:
    """The ruleset text a profile feeds nft: ``rules`` in rawpacer's forward chain."""
    return HEAD + "".join(f"\t\t{rule}\n" for rule in rules) + TAIL


def only_command(spec: str) -> Command:
    (command,) = parse_profile(spec).commands("rpd0", "rpd1")
    return command


TBF = ["tc", "qdisc", "replace", "dev", "rpd1", "root", "tbf"]


@pytest.mark.parametrize(
    ("spec", "tail"),
    [
        ("tbf:200mbit", "rate 200mbit burst 32768 latency 20ms"),
        ("tbf:1gbit", "rate 1gbit burst 32768 latency 20ms"),
        ("tbf:500kbit,burst=64kb", "rate 500kbit burst 65536 latency 20ms"),
        ("tbf:20Mbit,latency=50ms", "rate 20mbit burst 32768 latency 50ms"),
        ("tbf:20mbit,latency=1500us", "rate 20mbit burst 32768 latency 1500us"),
        ("tbf:20mbit,limit=1mb,burst=1600", "rate 20mbit burst 1600 limit 1048576"),
        ("tbf:1500bit", "rate 1500bit burst 32768 latency 20ms"),
    ],
)
def test_tbf_renders_one_tc_command_on_the_egress(spec, tail):
    command = only_command(spec)
    assert command == Command((*TBF, *tail.split()))
    assert command.line == " ".join(TBF) + " " + tail


def test_tbf_describes_its_rate_bucket_and_queue():
    assert parse_profile("tbf:200mbit").describe() == (
        "tbf: shape the DUT's egress to the readers to 200mbit (burst 32,768 B, latency 20ms; tc counts L2 bytes, "
        "no FCS)"
    )
    assert "limit 4,096 B" in parse_profile("tbf:1mbit,limit=4kb").describe()


@pytest.mark.parametrize(
    ("spec", "limit", "described"),
    [
        ("police:50kpps", "50000/second burst 500 packets", "over 50,000 packets/s (burst 500)"),
        ("police:5000/s", "5000/second burst 50 packets", "over 5,000 packets/s (burst 50)"),
        ("police:5000pps", "5000/second burst 50 packets", "over 5,000 packets/s (burst 50)"),
        ("police:5000", "5000/second burst 50 packets", "over 5,000 packets/s (burst 50)"),
        ("police:100pps", "100/second burst 5 packets", "over 100 packets/s (burst 5)"),  # nft's own 5 at least
        ("police:50kpps,burst=7", "50000/second burst 7 packets", "over 50,000 packets/s (burst 7)"),
        ("police:100mbit", "12500000 bytes/second", "over 100mbit (12,500,000 bytes/s of IP packets, L3)"),
        ("police:1gbit", "125000000 bytes/second", "over 1gbit (125,000,000 bytes/s of IP packets, L3)"),
    ],
)
def test_police_renders_a_counted_limit_rule(spec, limit, described):
    command = only_command(spec)
    assert command.argv == ("nft", "-f", "/dev/stdin")
    assert command.stdin == forward(f'limit rate over {limit} counter drop comment "rawpacer police"')
    assert command.line == "nft -f /dev/stdin < ruleset of 1 rule"
    assert parse_profile(spec).describe().endswith(described)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("drop:0.001", "numgen random mod 1000 < 1"),
        ("drop:0.25", "numgen random mod 100 < 25"),
        ("drop:0.5", "numgen random mod 10 < 5"),
        ("drop:1e-3", "numgen random mod 1000 < 1"),
        ("drop:0.0010", "numgen random mod 1000 < 1"),
        ("drop:0.000000001", "numgen random mod 1000000000 < 1"),
    ],
)
def test_drop_renders_a_random_fraction(spec, match):
    assert only_command(spec).stdin == forward(f'{match} counter drop comment "rawpacer drop"')


def test_rules_fill_a_scan_chain_the_forward_chain_jumps_to():
    command = only_command("rules:3")
    assert command.stdin == (
        "table inet rawpacer {\n\tchain scan {\n\t\tmeta mark 1\n\t\tmeta mark 2\n\t\tmeta mark 3\n\t}\n"
        + forward('counter jump scan comment "rawpacer rules"').removeprefix("table inet rawpacer {\n")
    )
    assert command.line == "nft -f /dev/stdin < ruleset of 4 rules"


def test_rules_zero_keeps_the_hook_and_the_jump():
    assert only_command("rules:0").stdin == (
        "table inet rawpacer {\n\tchain scan {\n\t}\n"
        + forward('counter jump scan comment "rawpacer rules"').removeprefix("table inet rawpacer {\n")
    )


def test_a_hundred_thousand_rules_render_at_once():
    started = time.perf_counter()
    text = only_command("rules:100000").stdin
    assert text is not None and text.count("\n\t\tmeta mark ") == 100_000
    assert "\t\tmeta mark 100000\n" in text and "meta mark 100001" not in text
    assert time.perf_counter() - started < 30  # a hang guard, not a timing claim: it renders in well under 1 s


def test_conntrack_renders_the_stateful_chain():
    assert only_command("conntrack").stdin == forward(
        'ct state invalid counter drop comment "rawpacer conntrack invalid"',
        'ct state established,related counter accept comment "rawpacer conntrack established"',
        'ct state new counter accept comment "rawpacer conntrack new"',
    )


def test_profiles_compose_in_chain_order_whatever_the_order_given():
    profiles = parse_profiles(["conntrack", "rules:2", "drop:0.1", "police:1kpps", "tbf:20mbit"])
    assert [type(p) for p in profiles] == [Tbf, Police, Drop, Rules, Conntrack]
    assert [p.spec for p in profiles] == ["tbf:20mbit", "police:1kpps", "drop:0.1", "rules:2", "conntrack"]


def test_every_profile_describes_itself_in_one_line():
    for profile in parse_profiles(["tbf:20mbit", "police:1kpps", "drop:0.1", "rules:2", "conntrack"]):
        assert profile.describe().startswith(profile.name + ": ") and "\n" not in profile.describe()


def test_every_nft_rule_that_drops_or_counts_has_a_counter_and_a_comment():
    profiles = parse_profiles(["police:1kpps", "drop:0.1", "rules:5", "conntrack"])
    for command in (c for p in profiles for c in p.commands("rpd0", "rpd1")):
        assert command.stdin is not None
        for line in command.stdin.splitlines():
            words = line.split()
            if {"drop", "accept", "jump"} & set(words):
                assert "counter" in words and 'comment "rawpacer ' in line


def test_the_table_lists_every_profile():
    assert list(PROFILES) == ["tbf", "police", "drop", "rules", "conntrack"]


def test_an_empty_ruleset_declares_the_table_and_chain():
    assert nft_ruleset([]) == HEAD + TAIL


BAD = {
    "": "profile '' is unknown; use one of: tbf, police, drop, rules, conntrack",
    "shaper:1gbit": "profile 'shaper' is unknown; use one of: tbf, police, drop, rules, conntrack",
    "tbf": "needs a value; use tbf:RATE[,burst=B][,limit=L|latency=T]",
    "tbf:": "needs a value; use tbf:RATE[,burst=B][,limit=L|latency=T]",
    "tbf:10k": "rate '10k' is not allowed; use a bit rate like 500kbit, 200mbit, 1gbit (1kbit-100gbit)",
    "tbf:fast": "rate 'fast' is not allowed; use a bit rate like 500kbit, 200mbit, 1gbit (1kbit-100gbit)",
    "tbf:999bit": "rate '999bit' is out of range; allowed: whole bits/s, 1kbit-100gbit",
    "tbf:101gbit": "rate '101gbit' is out of range; allowed: whole bits/s, 1kbit-100gbit",
    "tbf:1.0005kbit": "rate '1.0005kbit' is out of range; allowed: whole bits/s, 1kbit-100gbit",
    "tbf:1mbit,burst=1": "burst '1' is out of range; use bytes like 1600, 32kb, 1mb (1,600-1,073,741,824 bytes)",
    "tbf:1mbit,burst=2gb": "burst '2gb' is out of range; use bytes like 1600, 32kb, 1mb (1,600-1,073,741,824 bytes)",
    "tbf:1mbit,burst=lots": "burst 'lots' is not allowed; use bytes like 1600, 32kb, 1mb (1,600-1,073,741,824 bytes)",
    "tbf:1mbit,limit=1kb": "limit '1kb' is out of range; use bytes like 1600, 32kb, 1mb (1,600-1,073,741,824 bytes)",
    "tbf:1mbit,latency=5": "latency '5' is not allowed; use a time like 500us, 20ms, 1s (100us-60s)",
    "tbf:1mbit,latency=2min": "latency '2min' is not allowed; use a time like 500us, 20ms, 1s (100us-60s)",
    "tbf:1mbit,latency=10us": "latency '10us' is out of range; use a time like 500us, 20ms, 1s (100us-60s)",
    "tbf:1mbit,latency=61s": "latency '61s' is out of range; use a time like 500us, 20ms, 1s (100us-60s)",
    "tbf:1mbit,limit=10kb,latency=1ms": "limit and latency exclude each other (tc-tbf(8)); give one of them",
    "tbf:1mbit,peakrate=2mbit": "option 'peakrate=2mbit' is not allowed; use burst=B, limit=L or latency=T",
    "tbf:1mbit,burst": "option 'burst' is not allowed; use burst=B, limit=L or latency=T",
    "tbf:1mbit,burst=2kb,burst=3kb": "option 'burst' is given twice; give it once",
    "police": "needs a value; use police:RATE[,burst=N] (50kpps, 5000/s, 5000pps, or a bit rate like 100mbit)",
    "police:5kpps,burst=0": "burst '0' is out of range; use a whole number 1-100,000,000",
    "police:5kpps,rate=7": "option 'rate=7' is not allowed; use burst=N (packets)",
    "police:1mbit,burst=9": "burst=N counts packets; give the rate in packets/s (50kpps) to set it",
    "police:0": "rate '0' is not allowed; use packets/s like 50kpps, 5000/s, 5000pps (1-100,000,000 packets/s) "
    "or a bit rate like 100mbit (1kbit-100gbit)",
    "police:lots": "rate 'lots' is not allowed; use packets/s like 50kpps, 5000/s, 5000pps (1-100,000,000 "
    "packets/s) or a bit rate like 100mbit (1kbit-100gbit)",
    "police:1.5pps": "rate '1.5pps' is out of range; allowed: whole 1-100,000,000 packets/s",
    "police:200gbit": "rate '200gbit' is out of range; allowed: whole bits/s, 1kbit-100gbit",
    "drop": "needs a value; use drop:FRACTION (0 < FRACTION < 1, e.g. 0.001)",
    "drop:0": "fraction '0' is out of range; use a fraction between 0 and 1 (both excluded) like 0.001 or 0.25, "
    "at most 9 decimals",
    "drop:1": "fraction '1' is out of range; use a fraction between 0 and 1 (both excluded) like 0.001 or 0.25, "
    "at most 9 decimals",
    "drop:-0.1": "fraction '-0.1' is out of range; use a fraction between 0 and 1 (both excluded) like 0.001 or "
    "0.25, at most 9 decimals",
    "drop:nan": "fraction 'nan' is out of range; use a fraction between 0 and 1 (both excluded) like 0.001 or "
    "0.25, at most 9 decimals",
    "drop:1%": "fraction '1%' is not allowed; use a fraction between 0 and 1 (both excluded) like 0.001 or 0.25, "
    "at most 9 decimals",
    "drop:0.0000000001": "fraction '0.0000000001' has too many decimals; use a fraction between 0 and 1 (both "
    "excluded) like 0.001 or 0.25, at most 9 decimals",
    "rules": "needs a value; use rules:N (0-100,000)",
    "rules:-1": "count '-1' is not allowed; use a whole number 0-100,000",
    "rules:1e3": "count '1e3' is not allowed; use a whole number 0-100,000",
    "rules:100001": "count '100001' is out of range; use a whole number 0-100,000",
    "conntrack:on": "conntrack takes no value; use conntrack",
    "conntrack:": "conntrack takes no value; use conntrack",
}


@pytest.mark.parametrize("spec", list(BAD))
def test_a_bad_spec_is_refused_in_one_line_naming_it(spec):
    with pytest.raises(UsageError) as caught:
        parse_profiles([spec])
    assert str(caught.value) == f"--dut {spec!r}: {BAD[spec]}"
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "specs",
    [["tbf:1gbit", "tbf:200mbit"], ["police:1kpps", "police:1mbit"], ["conntrack", "conntrack"]],
)
def test_a_profile_given_twice_does_not_compose(specs):
    name = specs[0].partition(":")[0]
    with pytest.raises(UsageError, match=rf"^--dut '{specs[1]}': cannot compose with '{specs[0]}': .*one {name}\)$"):
        parse_profiles(specs)


def test_no_spec_is_no_profile():
    assert parse_profiles([]) == ()


def test_a_spec_that_is_not_text_is_refused():
    with pytest.raises(UsageError, match="is not a profile"):
        parse_profiles([3])  # type: ignore[list-item]
