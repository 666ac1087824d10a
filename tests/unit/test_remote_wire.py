"""rawpacer.remote without a network: host specs and shares, the message table on both sides, the
clock estimate and one-way latency, an op's result across the wire, ssh's failures in one line."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rawpacer.errors import UsageError
from rawpacer.messages import CryptoSource, MessageSource, SeededSource
from rawpacer.readers import Arrivals, OpResult, PortTally
from rawpacer.readers.counts import Counts
from rawpacer.remote import channel, clock, outcome, wire
from rawpacer.remote.readerset import merge
from rawpacer.remote.spec import Host, parse_hosts, shares


def test_host_specs_with_user_port_and_weight():
    assert parse_hosts("h1") == (Host("h1"),)
    assert parse_hosts("me@h1:2222=3, [2001:2::2]") == (Host("h1", "me", 2222, 3), Host("[2001:2::2]"))
    assert parse_hosts("me@h1:2222")[0].destination == "me@h1"
    assert parse_hosts("[2001:2::2]:22")[0].destination == "2001:2::2"
    assert parse_hosts("h1:2222")[0].label == "h1:2222"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "names no host"),
        ("a@@b", "'a@@b' is not a host spec"),
        ("h1:0", "port 0 is out of range"),
        ("h1=1001", "weight 1001 is out of range"),
        ("h1,h1", "names a host twice"),
        ("h1,", "'' is not a host spec"),
    ],
)
def test_bad_host_specs_say_which_part(text, said):
    with pytest.raises(UsageError, match=said):
        parse_hosts(text)


def test_shares_follow_the_weights_and_add_up():
    two = parse_hosts("a,b")
    assert shares(10000, two) == [5000, 5000]
    assert shares(7, two) in ([4, 3], [3, 4])
    assert shares(8, parse_hosts("a,b=3")) == [2, 6]
    assert shares(3, parse_hosts("a=100,b,c")) == [1, 1, 1]  # every host gets one at least
    assert sum(shares(101, parse_hosts("a=3,b=2,c=2"))) == 101
    with pytest.raises(UsageError, match="1 readers cannot be spread over 2 hosts"):
        shares(1, two)


def roundtrip(sender: str, kind: str, blob: bytes = b"", **fields: object) -> wire.Message:
    read, write = os.pipe()
    try:
        wire.write(write, wire.encode(sender, kind, blob, **fields))
        return wire.Inbox(read, sender, "peer").read(1.0)
    finally:
        os.close(read)
        os.close(write)


def test_a_message_crosses_the_wire_with_its_blob():
    got = roundtrip(
        wire.CONTROLLER,
        "begin",
        b"\x00\xff" * 10,
        mode="op",
        expected_size=20,
        timestamps=False,
        silence=None,
        fill="bytes",
        prearm=False,
        fanouts=None,
    )
    assert (got.type, got["mode"], got["silence"], got.blob) == ("begin", "op", None, b"\x00\xff" * 10)


@pytest.mark.parametrize(
    ("sender", "kind", "fields", "said"),
    [
        (wire.CONTROLLER, "warp", {}, "unknown message type 'warp'"),
        (
            wire.AGENT,
            "begin",
            {"mode": "op", "expected_size": 1, "timestamps": True, "silence": None, "fill": "crypto", "prearm": True},
            "may not come from the agent",
        ),
        (wire.CONTROLLER, "clock", {"extra": 1}, "has fields"),
        (wire.AGENT, "time", {"realtime_ns": "soon"}, "field 'realtime_ns' is str, not int"),
        (wire.AGENT, "time", {"realtime_ns": True}, "field 'realtime_ns' is bool"),
    ],
)
def test_the_table_refuses_what_it_does_not_allow(sender, kind, fields, said):
    with pytest.raises(wire.ProtocolError, match=said):
        wire.encode(sender, kind, **fields)


def test_every_message_in_the_table_has_a_sender_and_typed_fields():
    for kind, (sender, spec) in wire.MESSAGES.items():
        assert sender in ("both", wire.CONTROLLER, wire.AGENT), kind
        assert all(isinstance(types, tuple) and types for types in spec.values()), kind


def hello(version: int, min_version: int, capabilities: list[str]) -> wire.Message:
    return wire.Message(
        "hello",
        {"version": version, "min_version": min_version, "capabilities": capabilities, "software": "rawpacer 9"},
    )


def test_hello_versions_must_meet_and_required_capabilities_be_there():
    wire.check_hello(hello(wire.VERSION, wire.MIN_VERSION, list(wire.CAPABILITIES)), "the agent")
    with pytest.raises(wire.ProtocolError, match=r"protocol mismatch: the agent \(rawpacer 9\) speaks versions 7-9"):
        wire.check_hello(hello(9, 7, list(wire.CAPABILITIES)), "the agent")
    with pytest.raises(wire.ProtocolError, match="the agent lacks clock"):
        wire.check_hello(hello(wire.VERSION, wire.MIN_VERSION, ["readers"]), "the agent")


def test_a_silent_or_closed_peer_is_a_protocol_error():
    read, write = os.pipe()
    try:
        with pytest.raises(wire.ProtocolError, match="did not answer"):
            wire.Inbox(read, wire.AGENT, "the agent on h1").read(0.05)
        os.close(write)
        with pytest.raises(wire.ProtocolError, match="the agent on h1 closed the channel"):
            wire.Inbox(read, wire.AGENT, "the agent on h1").read(1.0)
    finally:
        os.close(read)


def test_the_offset_comes_from_the_fastest_exchange_and_its_half_round_trip_bounds_it():
    exchanges = [
        clock.Exchange(0, 5_000_100, 200),
        clock.Exchange(1000, 5_001_020, 1040),
        clock.Exchange(0, 5_000_900, 2000),
    ]
    got = clock.estimate(exchanges)
    assert (got.offset_ns, got.uncertainty_ns, got.exchanges) == (5_000_000.0, 20.0, 3)
    reads = iter([0, 1_000_010, 20, 0, 1_000_000, 40])
    measured = clock.measure(lambda: next(reads), lambda: next(reads), count=2)
    assert measured.offset_ns == 1_000_000.0 and measured.uncertainty_ns == 10.0


def test_one_way_latency_is_corrected_and_withheld_when_the_clocks_cannot_tell():
    offset = clock.Offset(5_000_000, 20_000, 0, 64)
    latency = clock.one_way([5_100_000, 5_200_000, 5_300_000], offset)
    assert latency.median_ns == 200_000 and latency.uncertainty_ns == 20_000
    unknown = clock.one_way([5_010_000], offset)
    assert unknown.median_ns is None and "larger than the figure" in unknown.describe()
    assert clock.one_way([], offset).why_none == "no op had an arrival"


def op_result(readers: int, lost_port: int | None = None, arrivals: Arrivals | None = None) -> OpResult:
    lost = 1 if lost_port is not None else 0
    deviations = {lost_port: PortTally(lost_port, Counts(lost=1))} if lost_port is not None else {}
    return OpResult(
        "op", readers, 100, 1, readers, Counts(delivered=readers - lost, intact=readers - lost, lost=lost), False,
        0.001, 0.0, 0.0,
        deviations=deviations, reader_checked=readers - lost, reader_first_ns=10, reader_last_ns=20, arrivals=arrivals,
    )  # fmt: skip


def test_an_op_result_crosses_the_wire_with_its_arrivals_on_the_agents_realtime_clock():
    got = Arrivals(np.array([100, 200], np.int64), np.array([0, 1], np.int32), np.array([True, False]))
    sent = op_result(3, 5002, got)
    verdict = outcome.to_wire(sent, mono_to_rt_ns=1000, injected_ns=7)
    assert (verdict.deviations, verdict.arrivals) == (1, 2)
    back, first_rt = outcome.from_wire(verdict, sent=3, wait_s=0.5, op_s=0.6, timestamps=True)
    assert [getattr(back, name) for name in outcome.SCALARS] == [getattr(sent, name) for name in outcome.SCALARS]
    assert back.deviations == sent.deviations and back.mode == "op"
    assert back.counts == sent.counts
    assert first_rt == 10 + 1000 + 7
    assert (back.counts.delivered, back.counts.lost, back.sent, back.wait_s, list(back.deviations)) == (
        2,
        1,
        3,
        0.5,
        [5002],
    )
    assert back.arrivals is not None and back.arrivals.rx_ns.tolist() == [107, 207]
    assert back.arrivals.match.tolist() == [True, False]


@pytest.mark.parametrize("kind", wire.SEEDED)
@pytest.mark.parametrize(("size", "first_slot"), [(1500, 7), (1001, 3)])  # 1001: a share starting mid-word/block
def test_a_share_of_a_seeded_fill_is_made_again_from_its_seed(kind: str, size: int, first_slot: int) -> None:
    source, share = MessageSource.make(kind, size), MessageSource.make(kind, size)
    assert isinstance(source, SeededSource) and isinstance(share, SeededSource)
    whole = bytearray(10 * size)
    source.fill(whole)
    assert source.last_seed is not None
    mine = bytearray((10 - first_slot) * size)
    share.expand(source.last_seed, mine, first_slot * size)  # as the agent holding those slots makes them
    assert mine == whole[first_slot * size :]
    source.fill(whole)
    assert mine != whole[first_slot * size :]  # the next fill is fresh


def test_the_next_fill_follows_the_seed_chain_both_sides_agree_on():
    source = CryptoSource(100)
    first = bytearray(100)
    source.fill(first)
    assert source.last_seed is not None
    chained = wire.chained(source.last_seed)
    assert chained != source.last_seed and wire.chained(source.last_seed) == chained
    source.next_seed = chained
    second, again = bytearray(100), bytearray(100)
    source.fill(second)
    assert source.last_seed == chained and source.next_seed is None
    CryptoSource(100).expand(chained, again)
    assert second == again != first
    source.fill(second)
    assert source.last_seed != wire.chained(chained)  # unset: fresh from os.urandom


def test_results_of_several_hosts_merge_into_one():
    a = op_result(2, arrivals=Arrivals(np.array([1], np.int64), np.array([1], np.int32), np.array([True])))
    b = op_result(
        6, lost_port=5005, arrivals=Arrivals(np.array([2], np.int64), np.array([0], np.int32), np.array([True]))
    )
    merged = merge([a, b], sent=8, wait_s=0.1, op_s=0.2, slot_bases=[0, 2])
    assert (merged.readers, merged.counts.delivered, merged.counts.lost, merged.sent, list(merged.deviations)) == (
        8,
        7,
        1,
        8,
        [5005],
    )
    assert merged.arrivals is not None and merged.arrivals.slot.tolist() == [1, 2]


@pytest.mark.parametrize(
    ("stderr", "code", "said"),
    [
        (["root@h1: Permission denied (publickey)."], 255, "ssh to h1 failed authentication"),
        (["Host key verification failed."], 255, "ssh to h1 failed authentication"),
        (["ssh: connect to host h1 port 22: Connection refused"], 255, "ssh to h1 could not connect"),
        (["ssh: Could not resolve hostname h1: Name or service not known"], 255, "ssh to h1: no such host"),
        (["bash: line 1: rawpacer: command not found"], 127, "rawpacer is not installed on h1; install it there"),
        (["python3: No module named 'rawpacer'"], 1, "rawpacer is not installed on h1"),
        (["rawpacer: argument command: invalid choice: 'agent' (choose from ...)"], 2, "rawpacer on h1 is too old"),
        ([], -9, "the agent on h1 was killed by SIGKILL"),
        (["client_loop: send disconnect: Broken pipe"], 255, "ssh to h1 failed (client_loop: send disconnect"),
    ],
)
def test_why_ssh_failed_in_one_line(stderr, code, said):
    line = channel.why_failed(Host("h1"), stderr, code)
    assert said in line and "\n" not in line


def test_ssh_never_prompts_and_takes_the_users_command(monkeypatch):
    monkeypatch.setenv(channel.SSH_ENV, "ssh -F '/tmp/my config'")
    monkeypatch.delenv(channel.COMMAND_ENV, raising=False)
    argv = channel.ssh_argv(Host("h1", "me", 2222))
    assert argv[:3] == ["ssh", "-F", "/tmp/my config"] and "BatchMode=yes" in argv and "-T" in argv
    assert argv[-2:] == ["me@h1", channel.DEFAULT_COMMAND]
    assert argv[argv.index("-p") + 1] == "2222"
