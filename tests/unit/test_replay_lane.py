"""The C fast lane (rawpacer.traffic._lane) against its Python twin: a Plan through the lane and one
through Rewriter + fit_frame alone give byte-identical frames, the same flows, hashes, sequences,
offsets and counts over random captures; the chunked pcap reader gives capture.py's records and its
errors word for word."""

from __future__ import annotations

import itertools
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import capture_frames, write_pcap
from scapy.all import ARP, IP, TCP, UDP, Dot1Q, Ether, IPv6, IPv6ExtHdrHopByHop, Raw, fragment

from rawpacer.bench.replay import file_source
from rawpacer.bench.replayplan import Plan, Timing, scan
from rawpacer.errors import CaptureError, UsageError
from rawpacer.headers.sequence import sequence_bytes
from rawpacer.traffic import Rewriter, lane, make_endpoints, read_capture
from rawpacer.traffic.lane import BUILT, read_chunks

MACS = {"src": "02:00:00:00:00:0a", "dst": "02:00:00:00:00:0b"}
DESTINATIONS = ["10.0.0.1", "10.0.0.2", "10.9.8.7"]
DESTINATIONS6 = ["2001:db8::1", "2001:db8::2"]


def test_the_lane_is_built_here() -> None:
    assert BUILT  # the twin tests below compare against it: they must not compare Python with Python


def random_frame(rng: random.Random, k: int) -> list[tuple[bytes, int]]:
    """One captured record (or a datagram's fragments): (bytes on the wire, bytes captured)."""
    size = rng.choice([0, 3, 8, 20, 64, 200, 1000, 1472, 1600, 3000])
    payload = (sequence_bytes(k) if rng.random() < 0.5 else b"") + bytes(rng.randrange(256) for _ in range(size))
    dport = rng.choice([53, 53, 123, 5001])
    six = rng.random() < 0.3
    if six:
        ip = IPv6(src="2001:db8::9", dst=rng.choice(DESTINATIONS6))
        if rng.random() < 0.15:
            ip = ip / IPv6ExtHdrHopByHop()
    else:
        options = b"\x01\x01\x01\x00" * rng.choice([0, 0, 1, 3])
        ip = IP(src="10.1.1.1", dst=rng.choice(DESTINATIONS), options=options, id=k)
    kind = rng.random()
    if kind < 0.08:
        l4 = TCP(sport=1, dport=dport) / Raw(payload)
    else:
        udp = UDP(sport=rng.randrange(1, 65536), dport=dport)
        if kind < 0.2:
            udp.chksum = 0
        elif kind < 0.25:
            udp.chksum = rng.randrange(1, 65536)  # wrong in the capture: stays wrong
        l4 = udp / Raw(payload)
    packet = ip / l4
    link = Ether(**MACS)
    if rng.random() < 0.3:
        link = link / Dot1Q(vlan=rng.randrange(1, 4095), prio=rng.randrange(8))
        if rng.random() < 0.2:
            link = link / Dot1Q(vlan=5)
    if rng.random() < 0.03:
        return [(bytes(Ether(**MACS) / ARP()), -1)]
    if not six and kind >= 0.08 and rng.random() < 0.1:
        pieces = fragment(packet, fragsize=256)
        rng.shuffle(pieces) if rng.random() < 0.3 else None
        return [(bytes(link / piece), -1) for piece in pieces]
    frame = bytes(link / packet)
    caplen = rng.randrange(14, len(frame)) if rng.random() < 0.07 else -1  # cut by a snapshot length
    return [(frame, caplen)]


def write_records(path: Path, records: list[tuple[bytes, int]], linktype: int = 1) -> Path:
    """A nanosecond pcap; a caplen of -1 means the whole frame."""
    with open(path, "wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        for i, (frame, caplen) in enumerate(records):
            data = frame if caplen < 0 else frame[:caplen]
            seconds, ns = divmod(1_700_000_000 * 10**9 + i * 7_777 - (i % 5) * 3_000, 10**9)
            handle.write(struct.pack("<IIII", seconds, ns, len(data), len(frame)) + data)
    return path


def plan_of(path: Path, fast: bool, *, mtu: int, fit: str, vlan: int | None, six: bool, timing: Timing, loops: int):
    source = file_source(path)
    pairs = [("198.18.0.1", "198.18.0.2")] + ([("2001:2::1", "2001:2::2")] if six else [])
    rewriter = Rewriter(make_endpoints("02:00:00:00:00:01", "02:00:00:00:00:02", *pairs, vlan=vlan), range(5001, 6000))
    found = scan(source, mtu, fit, fast=fast)
    plan = Plan(source, found, timing, mtu=mtu, fit=fit, loops=loops, rewriter=rewriter, fast=fast)
    chunks = [(c.start, c.frames, None if c.offsets is None else list(c.offsets)) for c in plan.chunks()]
    expected = plan.expected
    return {
        "scan": found,
        "chunks": chunks,
        "counts": plan.counts,
        "flows": rewriter.flows,
        "unsupported": rewriter.unsupported,
        "passed": rewriter.passed,
        "digests": {f: list(d) for f, d in expected.digests.items()},
        "offsets": {f: expected.offsets_of(f).tolist() for f in expected.digests},
        "sequences": {f: None if s is None else list(s) for f, s in expected.sequences.items()},
        "described": expected.flows,
    }


@pytest.mark.parametrize(
    ("seed", "mtu", "fit", "vlan", "six", "timing"),
    [
        (1, 1500, "trim", None, True, Timing("captured", 2.0)),
        (2, 1500, "fragment", 7, True, Timing.parse(rate="10k")),
        (3, 1280, "trim", 7, False, Timing.parse(rate="80Mbit")),
        (4, 1280, "fragment", None, True, Timing("topspeed")),
        (5, 9000, "trim", None, False, Timing("captured")),
    ],
)
def test_the_lane_plans_exactly_as_the_python_path(tmp_path, seed, mtu, fit, vlan, six, timing) -> None:
    rng = random.Random(seed)
    records = [r for k in range(700) for r in random_frame(rng, k)]
    path = write_records(tmp_path / "r.pcap", records)
    fast = plan_of(path, True, mtu=mtu, fit=fit, vlan=vlan, six=six, timing=timing, loops=2)
    slow = plan_of(path, False, mtu=mtu, fit=fit, vlan=vlan, six=six, timing=timing, loops=2)
    assert fast["counts"].datagrams > 500 and len(fast["flows"]) >= 3  # the lane had work to do
    for key in fast:
        assert fast[key] == slow[key], key


@pytest.mark.parametrize("linktype", [101, 228])
def test_raw_ip_captures_get_an_ethernet_header_in_both_paths(tmp_path, linktype) -> None:
    rng = random.Random(linktype)
    records = []
    for k in range(300):
        frame, caplen = random_frame(rng, k)[0]
        if frame[12:14] == b"\x08\x00":  # the IPv4 packet alone
            records.append((frame[14:], caplen if caplen < 0 else max(1, caplen - 14)))
    path = write_records(tmp_path / "raw.pcap", records, linktype)
    args = {"mtu": 1500, "fit": "trim", "vlan": None, "six": False, "timing": Timing("captured"), "loops": 1}
    fast, slow = plan_of(path, True, **args), plan_of(path, False, **args)
    assert fast["counts"].datagrams > 100
    for key in fast:
        assert fast[key] == slow[key], key


def test_flows_are_numbered_in_order_of_first_appearance_whichever_path_meets_them(tmp_path) -> None:
    first = bytes(Ether(**MACS) / IP(dst="10.0.0.5") / UDP(dport=9) / Raw(bytes(3000)))  # over the MTU: Python's
    second = bytes(Ether(**MACS) / IP(dst="10.0.0.6") / UDP(dport=9) / Raw(b"x"))  # the lane's
    path = write_pcap(tmp_path / "order.pcap", [first, second, first])
    args = {"mtu": 1500, "fit": "trim", "vlan": None, "six": False, "timing": Timing("captured"), "loops": 1}
    fast = plan_of(path, True, **args)
    assert {flow for flow, _port in fast["flows"].values()} == {0, 1}
    assert fast["flows"][(bytes([10, 0, 0, 5]), 9)][0] == 0 and fast["described"][1] == ("10.0.0.6", 9)


def capture_bytes(order: str, nanos: bool, frames: list[bytes]) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)]
    for i, frame in enumerate(frames):
        out.append(struct.pack(order + "IIII", 1_700_000_000 + i, 999 * i, len(frame), len(frame) + i) + frame)
    return b"".join(out)


def chunked(path: Path, count: int) -> list[tuple[int, int, int, bytes, int]]:
    return [
        (r.index, r.time_ns, int(r.link), r.data, r.orig_len)
        for chunk in read_chunks(path, count)
        for r in (chunk.record(i) for i in range(len(chunk)))
    ]


@pytest.mark.parametrize(("order", "nanos"), list(itertools.product("<>", (False, True))))
def test_the_chunked_reader_reads_what_read_capture_reads(tmp_path, order, nanos) -> None:
    frames = capture_frames(3, 300, size=500)
    path = tmp_path / "c.pcap"
    path.write_bytes(capture_bytes(order, nanos, frames))
    streamed = [(r.index, r.time_ns, int(r.link), r.data, r.orig_len) for r in read_capture(path)]
    assert chunked(path, 256) == streamed and chunked(path, 7) == streamed and len(streamed) == 900


def test_without_the_extension_a_pcap_is_packed_from_read_capture(tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.pcap"
    path.write_bytes(capture_bytes(">", False, capture_frames(2, 300)))
    parsed = chunked(path, 100)
    monkeypatch.setattr(lane, "BUILT", False)
    assert chunked(path, 100) == parsed and len(parsed) == 600


@pytest.mark.parametrize("cut", [24 + 5, 24 + 16 + 3, 24 + 2 * (16 + 100) + 10, 24 + 600 * 116 - 1])
def test_a_truncated_file_fails_with_read_captures_words_after_its_whole_frames(tmp_path, cut) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(capture_bytes("<", True, capture_frames(1, 600, size=72))[:cut])
    with pytest.raises(CaptureError) as streamed:
        list(read_capture(path))
    got = []
    with pytest.raises(CaptureError) as chunks:
        for chunk in read_chunks(path, 64):
            got.extend(range(len(chunk)))
    assert str(chunks.value) == str(streamed.value) and "truncated at frame" in str(streamed.value)
    assert len(got) == int(str(streamed.value).split("at frame ")[1].split(",")[0])


def test_a_corrupt_length_and_a_bad_header_fail_as_read_capture_fails(tmp_path) -> None:
    data = bytearray(capture_bytes("<", False, capture_frames(1, 5)))
    struct.pack_into("<I", data, 24 + 2 * (16 + len(capture_frames(1, 1)[0])) + 8, 10**6)
    for name, content in (("corrupt", bytes(data)), ("empty", b""), ("short", data[:10]), ("none", data[:24])):
        path = tmp_path / f"{name}.pcap"
        path.write_bytes(content)
        with pytest.raises(CaptureError) as streamed:
            list(read_capture(path))
        with pytest.raises(CaptureError) as chunks:
            list(read_chunks(path))
        assert str(chunks.value) == str(streamed.value), name


def test_pcapng_and_frames_from_python_take_the_same_chunked_path(tmp_path) -> None:
    frames = capture_frames(2, 40)
    path = write_pcap(tmp_path / "p.pcap", frames)
    pairs = np.concatenate([c.caplens for c in read_chunks(path, 16)])
    assert pairs.tolist() == [len(f) for f in frames]


@pytest.mark.parametrize(
    ("timing", "kept"), [(Timing.parse(rate="30k"), "I"), (Timing("captured"), "q"), (Timing("topspeed"), None)]
)
def test_expected_keeps_frame_numbers_at_a_packet_rate_and_nothing_at_top_speed(tmp_path, timing, kept) -> None:
    path = write_pcap(tmp_path / "one.pcap", capture_frames(1, 3000, size=40))
    source = file_source(path)
    rewriter = Rewriter(make_endpoints("02:00:00:00:00:01", "02:00:00:00:00:02", ("198.18.0.1", "198.18.0.2")), [5001])
    plan = Plan(source, scan(source, 1500, "trim"), timing, mtu=1500, fit="trim", loops=2, rewriter=rewriter)
    due = [o for c in plan.chunks() for o in (c.offsets.tolist() if c.offsets is not None else [0] * len(c))]
    expected = plan.expected
    assert expected.offsets_of(0).tolist() == due and len(due) == 6000
    assert (expected.offsets[0].typecode if expected.offsets else None) == kept


def test_running_out_of_reader_ports_in_the_lane_is_the_rewriters_one_line(tmp_path) -> None:
    path = write_pcap(tmp_path / "two.pcap", capture_frames(2, 2))
    rewriter = Rewriter(make_endpoints("02:00:00:00:00:01", "02:00:00:00:00:02", ("198.18.0.1", "198.18.0.2")), [5001])
    source = file_source(path)
    plan = Plan(source, scan(source, 1500, "trim"), Timing("captured"), mtu=1500, fit="trim", rewriter=rewriter)
    with pytest.raises(UsageError, match="more UDP flows than the 1 reader ports given"):
        list(plan.chunks())
    assert plan.lane is not None and plan.lane.flows == 1
