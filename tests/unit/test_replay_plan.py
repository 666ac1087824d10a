"""The pure parts of replay: fitting prebuilt frames to an MTU, the per-flow matcher, the timing
options, the streamed plan (offsets per chunk, loops without a seam, bit rates) and its memory."""

from __future__ import annotations

import itertools
import math
import sys
import threading
import tracemalloc

import numpy as np
import pytest
from helpers import capture_frames, write_pcap
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import IP, UDP, Ether, IPv6, Raw

from rawpacer.bench.replay import file_source
from rawpacer.bench.replayplan import CHUNK, Chunk, Plan, Timing, ahead, parse_limit, parse_loops, scan
from rawpacer.errors import UsageError
from rawpacer.headers import parse_frame
from rawpacer.headers.fragment import reassemble
from rawpacer.pacing.fed import FedSchedule, schedule_stats
from rawpacer.readers.replaymatch import match_flow, total
from rawpacer.traffic import Rewriter, make_endpoints
from rawpacer.traffic.fitframe import fit_frame

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
"""Explicit MACs: scapy never resolves one on the host."""


def udp4(size: int, checksum: bool = True) -> bytes:
    payload = (bytes(range(256)) * (size // 256 + 1))[:size]
    frame = Ether(**MACS) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=7, dport=5001) / Raw(payload)
    if not checksum:
        frame[UDP].chksum = 0
    return bytes(frame)


def test_a_frame_that_fits_leaves_as_it_is():
    frame = udp4(100)
    assert fit_frame(frame, 1500, "strict", 1).frames == [frame]


def test_trim_keeps_a_valid_datagram_with_a_shorter_payload():
    fitted = fit_frame(udp4(3000), 1500, "trim", 1)
    parsed = parse_frame(fitted.frames[0])
    assert parsed.checksums_ok and len(parsed.payload) == 1472 and fitted.cut == 3000 - 1472
    assert parsed.payload == udp4(3000)[42 : 42 + 1472]


def test_trim_leaves_a_zero_udp_checksum_zero():
    trimmed = fit_frame(udp4(2000, checksum=False), 576, "trim", 1).frames[0]
    assert trimmed[40:42] == b"\0\0" and len(parse_frame(trimmed).payload) == 576 - 28


@pytest.mark.parametrize("version", [4, 6])
def test_fragments_reassemble_to_the_original_datagram(version):
    ip = IP(src="198.18.0.1", dst="198.18.0.2") if version == 4 else IPv6(src="2001:2::1", dst="2001:2::2")
    frame = bytes(Ether(**MACS) / ip / UDP(sport=7, dport=5001) / Raw(bytes(range(256)) * 12))
    fitted = fit_frame(frame, 1280, "fragment", 77)
    assert len(fitted.frames) == 3 and all(len(f) - 14 <= 1280 for f in fitted.frames)
    whole = parse_frame(reassemble(fitted.frames))
    assert whole.payload == bytes(range(256)) * 12 and whole.checksums_ok


def test_strict_refuses_naming_the_frame():
    with pytest.raises(UsageError, match="frame 7 carries a 3028-byte packet, over the link MTU 1500"):
        fit_frame(udp4(3000), 1500, "strict", 1, "frame 7")


def test_the_matcher_counts_each_kind_of_deviation():
    assert match_flow([1, 2, 3], [1, 2, 3]).ok
    verdict = match_flow([1, 2, 3, 4], [2, 1, 1, 9, 3])
    assert (verdict.intact, verdict.late, verdict.duplicated, verdict.corrupt, verdict.lost) == (3, 1, 1, 1, 1)
    assert verdict.delivered == verdict.intact + verdict.duplicated + verdict.corrupt
    repeated = match_flow([5, 5], [5, 5])
    assert (repeated.duplicated, repeated.repeated, repeated.ok) == (1, 1, True)
    assert total([verdict, repeated]).sent == 6
    assert verdict.reordered is None and total([verdict, repeated]).reordered is None


def test_a_sequenced_flow_is_counted_by_its_payloads_sequences():
    """Hashes 10..15 carry sequences 0..5; the capture sent 0 1 3 2 5 4 in that order, all arrive in
    send order: not late, but RFC 4737 counts 2 and 4 as reordered, each passed over by one (extent 1)."""
    sent, sequences = [10, 11, 13, 12, 15, 14], [0, 1, 3, 2, 5, 4]
    verdict = match_flow(sent, [*sent, 12], sequences)
    assert (verdict.late, verdict.reordered, verdict.reorder_extent, verdict.duplicated) == (0, 2, 1, 1)
    far = match_flow([10, 11, 12, 13], [13, 11, 12, 10], [0, 1, 2, 3])
    assert (far.late, far.reordered, far.reorder_extent) == (3, 3, 3)
    merged = total([verdict, far, match_flow([1], [1])])
    assert (merged.reordered, merged.reorder_extent, merged.intact) == (5, 3, 11)


def test_a_flow_is_sequenced_only_when_every_payload_carries_the_field(tmp_path):
    def sequences(name: str, frames: list[bytes]) -> list[list[int] | None]:
        source = file_source(write_pcap(tmp_path / name, frames))
        sandbox = make_endpoints("02:00:00:00:00:01", "02:00:00:00:00:02", ("198.18.0.1", "198.18.0.2"))
        rewriter = Rewriter(sandbox, itertools.count(5001))
        plan = Plan(source, scan(source, 1500, "trim"), Timing("topspeed"), mtu=1500, fit="trim", rewriter=rewriter)
        for _ in plan.chunks():
            pass
        return [None if s is None else list(s) for s in plan.expected.sequences.values()]

    sequenced = capture_frames(1, 3, sequenced=True)
    assert sequences("seq.pcap", sequenced) == [[0, 1, 2]]
    assert sequences("mixed.pcap", [*sequenced, capture_frames(1, 1)[0]]) == [None]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": "10k", "topspeed": True}, "--rate and --topspeed both set the timing"),
        ({"timing": "captured", "rate": "1k"}, "--timing and --rate both set the timing"),
        ({"speed": "0"}, "speed '0' is out of range"),
        ({"speed": "-2"}, "speed '-2' is out of range"),
        ({"speed": "fast"}, "speed 'fast' is not a number"),
        ({"speed": "2", "topspeed": True}, "--speed scales captured timing"),
        ({"timing": "warp"}, "timing 'warp' is not allowed"),
        ({"rate": "0"}, "rate '0' is out of range"),
        ({"spin": "warp"}, "spin 'warp' is not allowed"),
        ({"spin": "full", "topspeed": True}, "--spin says how a paced replay waits"),
        ({"catch_up": "0"}, "catch-up '0' is out of range"),
        ({"catch_up": "burst", "topspeed": True}, "--catch-up says how a late paced replay catches up"),
    ],
)
def test_bad_timing_is_one_line(kwargs, message):
    with pytest.raises(UsageError, match=message):
        Timing.parse(**kwargs)


def test_spin_is_the_pacers_way_of_waiting_and_said():
    full = Timing.parse(rate="10k", spin="full")
    assert (full.kind, full.spin, full.describe()) == ("rate", "full", "at 10,000 pps, spinning")
    assert Timing.parse(spin="FULL").as_dict()["spin"] == "full" and Timing.parse().spin == "adaptive"


def test_catch_up_is_the_late_pacers_way_back_and_said_when_not_the_default():
    burst = Timing.parse(catch_up="burst")
    assert (burst.catch_up, burst.as_dict()["catch_up"], burst.describe()) == (
        math.inf,
        "burst",
        "captured timing x1, catch-up burst",
    )
    assert Timing.parse(rate="1k").describe() == "at 1,000 pps" and Timing.parse().as_dict()["catch_up"] == 1.25


def test_loop_and_limit_ranges():
    assert (parse_loops("3"), parse_limit(None), parse_limit("5")) == (3, None, 5)
    for bad in ("0", "x", "-1"):
        with pytest.raises(UsageError, match="loop"):
            parse_loops(bad)
        with pytest.raises(UsageError, match="limit"):
            parse_limit(bad)


def offsets_of(plan: Plan) -> np.ndarray:
    return np.concatenate([c.offsets for c in plan.chunks()])


def test_loops_are_one_schedule_without_a_seam(tmp_path):
    path = write_pcap(tmp_path / "c.pcap", capture_frames(2, 5), gap_ns=100_000)
    source = file_source(path)
    plan = Plan(source, scan(source, 1500, "trim"), Timing("captured"), mtu=1500, fit="trim", loops=3)
    gaps = np.diff(offsets_of(plan))
    assert gaps.size == 29 and set(gaps.tolist()) == {100_000}  # the loop boundaries included
    faster = Plan(source, scan(source, 1500, "trim"), Timing("captured", speed=4), mtu=1500, fit="trim", loops=2)
    assert set(np.diff(offsets_of(faster)).tolist()) == {25_000}


def test_a_capture_clock_that_steps_back_never_schedules_a_frame_earlier(tmp_path):
    frames = capture_frames(1, CHUNK + 10)
    path = write_pcap(tmp_path / "c.pcap", frames, gap_ns=1000)
    data = bytearray(path.read_bytes())
    record = 24 + (CHUNK + 2) * (16 + len(frames[0]))  # frame CHUNK+2's record header: a second earlier
    seconds = int.from_bytes(data[record : record + 4], "little")
    data[record : record + 4] = (seconds - 1).to_bytes(4, "little")
    path.write_bytes(data)
    source = file_source(path)
    offsets = offsets_of(Plan(source, scan(source, 1500, "trim"), Timing("captured"), mtu=1500, fit="trim"))
    assert (np.diff(offsets) >= 0).all() and offsets[CHUNK + 2] == offsets[CHUNK + 1]


def test_limit_and_rates(tmp_path):
    path = write_pcap(tmp_path / "c.pcap", capture_frames(1, 10, size=100), gap_ns=1)
    source = file_source(path)
    found = scan(source, 1500, "trim")
    pps = Plan(source, found, Timing.parse(rate="1k"), mtu=1500, fit="trim", loops=5, limit=23)
    assert offsets_of(pps).tolist() == [i * 1_000_000 for i in range(23)]
    bits = Plan(source, found, Timing.parse(rate="1Mbit"), mtu=1500, fit="trim")
    frame_bits = 8 * len(capture_frames(1, 1, size=100)[0])
    assert offsets_of(bits).tolist() == [i * frame_bits * 1000 for i in range(10)]


def test_the_plan_expects_each_flows_datagrams_and_fits_them(tmp_path):
    frames = capture_frames(3, 4, size=2000)
    path = write_pcap(tmp_path / "c.pcap", [*frames, frames[0]])
    source = file_source(path)
    sandbox = make_endpoints("02:00:00:00:00:01", "02:00:00:00:00:02", ("198.18.0.1", "198.18.0.2"))
    plan = Plan(
        source,
        scan(source, 1500, "fragment"),
        Timing("topspeed"),
        mtu=1500,
        fit="fragment",
        rewriter=Rewriter(sandbox, itertools.count(5001)),
    )
    sent = [f for c in plan.chunks() for f in c.frames]
    assert len(sent) == 26 and plan.counts.fragmented == 13
    assert {k: len(v) for k, v in plan.expected.digests.items()} == {0: 5, 1: 4, 2: 4}
    assert plan.expected.flows[1] == ("10.0.0.2", 53)
    assert match_flow(plan.expected.digests[0], plan.expected.digests[0][:4]).ok


def test_a_strict_frame_too_big_is_refused_by_the_scan(tmp_path):
    path = write_pcap(tmp_path / "c.pcap", [*capture_frames(1, 2), capture_frames(1, 1, size=1600)[0]])
    with pytest.raises(UsageError, match="frame 2 carries a 1628-byte packet"):
        scan(file_source(path), 1500, "strict")


def test_streaming_holds_one_chunk_whatever_the_files_length(tmp_path):
    def peak(frames: int) -> int:
        path = write_pcap(tmp_path / f"{frames}.pcap", capture_frames(1, frames, size=200))
        source = file_source(path)
        plan = Plan(source, scan(source, 1500, "trim"), Timing("captured"), mtu=1500, fit="trim", loops=2)
        tracemalloc.start()
        sent = sum(len(c.frames) for c in plan.chunks())
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert sent == 2 * frames
        return top

    small, large = peak(2 * CHUNK), peak(40 * CHUNK)
    assert large < 2 * small + (64 << 10), (small, large)


def test_the_fed_schedule_and_its_figures():
    schedule = FedSchedule()
    schedule.feed(10, np.array([5, 7, 9], np.int64))
    assert schedule.offset_ns(11) == 7 and schedule.offsets(11, 8).tolist() == [7, 9]
    figures = schedule_stats([100, 200, 310], [0, 100, 200])
    assert figures["gap_dev_ns"]["max"] == 10 and figures["end_vs_schedule_ns"] == 10


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 9000), mtu=st.integers(1280, 9000), version=st.sampled_from([4, 6]))
def test_any_datagram_fits_any_mtu_by_trim_or_fragment(size, mtu, version):
    ip = IP(src="198.18.0.1", dst="198.18.0.2") if version == 4 else IPv6(src="2001:2::1", dst="2001:2::2")
    payload = bytes(i % 251 for i in range(size))
    frame = bytes(Ether(**MACS) / ip / UDP(sport=7, dport=5001) / Raw(payload))
    pieces = fit_frame(frame, mtu, "fragment", 9).frames
    assert all(len(p) - 14 <= mtu for p in pieces)
    assert parse_frame(reassemble(pieces) if len(pieces) > 1 else pieces[0]).payload == payload
    trimmed = fit_frame(frame, mtu, "trim", 9)
    parsed = parse_frame(trimmed.frames[0])
    assert parsed.checksums_ok and parsed.payload == payload[: len(payload) - trimmed.cut]


def test_chunks_planned_ahead_arrive_in_order_and_the_thread_ends():
    chunks = [Chunk.of(k * 2, [bytes([k])] * 2) for k in range(40)]
    before = threading.active_count()
    assert [c.start for c in ahead(iter(chunks), depth=3)] == [c.start for c in chunks]
    assert threading.active_count() == before and sys.getswitchinterval() == pytest.approx(0.005)


def test_closing_the_planner_early_stops_its_thread_and_a_planning_error_reaches_the_caller():
    def endless():
        k = 0
        while True:
            yield Chunk.of(k, [b"x"])
            k += 1

    before = threading.active_count()
    planned = ahead(endless(), depth=2)
    assert next(planned).start == 0
    planned.close()
    assert threading.active_count() == before

    def broken():
        yield Chunk.of(0, [b"x"])
        raise UsageError("capture truncated at frame 1")

    with pytest.raises(UsageError, match="truncated at frame 1"):
        list(ahead(broken()))
