"""A replay's records taken while it runs: the recorder (C loop and Python twin) hands over what it
recorded so far at once and forgets it, so takes and the final collection hold every datagram
exactly once; a replay judged take by take counts exactly what it sent."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import capture_frames, udp_sender, write_pcap

import rawpacer
from rawpacer.bench import replay
from rawpacer.bench.replay import Judging, file_source, send_plan, taking
from rawpacer.bench.replayplan import Plan, Timing, scan
from rawpacer.readers.replay import ReplayReaders
from rawpacer.readers.replaymatch import python_datagram_hash
from rawpacer.readers.streammatch import StreamMatcher
from rawpacer.traffic import Rewriter
from rawpacer.writers import WriterOptions, get


@pytest.mark.parametrize("recorder", ["c", "python"])
def test_takes_and_the_collection_hold_every_datagram_once(veth, recorder):
    payloads = [i.to_bytes(8, "big") * (1 + i % 9) for i in range(6000)]
    parts = []
    with ReplayReaders(veth, 2, recorder=recorder) as readers, udp_sender(veth) as send:
        for lo in range(0, 6000, 1000):
            for i in range(lo, lo + 1000):
                send(payloads[i], readers.ports[i % 2])
            parts.append(readers.take())
        parts.append(readers.collect(0.2))
    assert sum(part.digest.size > 0 for part in parts) >= 2  # the takes did hand records over
    for slot in range(2):
        got = [h for part in parts for h in part.of_slot(slot)]
        assert got == [python_datagram_hash(p) for p in payloads[slot::2]]


@pytest.mark.parametrize("take_from", [0, None])
def test_a_replay_judged_take_by_take_counts_exactly(veth, tmp_path, monkeypatch, take_from):
    """Taken as it goes (a long replay's way: here from the first datagram) or, short of ``TAKE_FROM``,
    once it has sent: the same counts."""
    if take_from is not None:
        monkeypatch.setattr(replay, "TAKE_FROM", take_from)
    path = write_pcap(tmp_path / "flows.pcap", capture_frames(3, 400, sequenced=True))
    source = file_source(path)
    with ReplayReaders(veth, 3) as readers:
        target = veth.target(readers.ports)
        with veth.enter("writer"):
            writer = get("packet-ring")(target, WriterOptions(message_size=1472))
        timing = Timing.parse(None, None, "20k", False)
        plan = Plan(
            source,
            scan(source, 1500, "trim"),
            timing,
            mtu=1500,
            fit="trim",
            loops=2,
            rewriter=Rewriter.for_target(target),
        )
        judging = Judging(StreamMatcher(window=1500), readers.ports)
        plan.expected.matcher = judging.matcher
        with writer, taking(readers, judging, 0.01):
            sent, _ = send_plan(writer, plan, timing)
        judging.feed(readers.collect(0.3))
    rows, pacing, (rx, due) = judging.verdict(plan.expected.flows)
    # 0.12 s of sending, taken every 10 ms; or judged once, at the end
    assert sent == 2400 and (judging.batches > 3 if take_from is not None else judging.batches == 1)
    # each flow's 400 contents sent twice (the second loop: repeats, their arrivals duplicates)
    assert [(r.verdict.sent, r.verdict.intact, r.verdict.repeated, r.verdict.duplicated) for r in rows] == [
        (800, 400, 400, 400)
    ] * 3
    assert all(r.verdict.ok and r.verdict.reordered == 0 for r in rows)
    assert pacing["datagrams"] == 1200 and pacing["gap_dev_from"] == "every gap"
    assert rx.size == due.size == 1200 and (np.diff(due) >= 0).sum() > 0


def test_rawpacer_send_takes_while_it_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(replay, "TAKE_EVERY_S", 0.01)
    monkeypatch.setattr(replay, "TAKE_FROM", 0)
    path = write_pcap(tmp_path / "flows.pcap", capture_frames(2, 1000))
    result = rawpacer.send(str(path), writer="packet-ring", topology="veth", rate="20k")
    assert result.ok and [(f.verdict.sent, f.verdict.intact) for f in result.flows] == [(1000, 1000)] * 2
    assert result.pacing["datagrams"] == 2000
