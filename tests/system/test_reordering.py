"""Reordering and duplicates, live: sequenced datagrams injected into real readers, and a DUT that
reorders (two htb classes, odd sequences to a slow one), counted by compare, the op loop and both loops."""

from __future__ import annotations

import json

import pytest
from helpers import capture_frames, cli, inject, run_cli, sandbox_frame, write_pcap

import rawpacer
from rawpacer.bench.oploop import OpLoop
from rawpacer.bench.rfc2544_live import LiveDevice
from rawpacer.bench.rfc2544_suite import FrameSize
from rawpacer.bench.rfc2544_suite.result import TrialRecord
from rawpacer.bench.rfc2544_suite.trial import Outcome, Trial
from rawpacer.dut.apply import apply
from rawpacer.headers.sequence import SEQUENCE_BYTES, sequence_bytes
from rawpacer.messages import MessageSource
from rawpacer.pacing import Pacer
from rawpacer.pacing.schedule import ConstantSchedule
from rawpacer.readers import ReaderSet, ReaderTuning
from rawpacer.sandbox import Sandbox
from rawpacer.writers import WriterOptions, get

SIZE = 200
IPV4_UDP = 28
"""IPv4 and UDP headers before the payload, as the DUT's u32 filter counts offsets."""

REORDERING_DUT = (
    # two htb classes on the DUT's egress: 1:2 forwards at once, 1:1 holds to 2 Mbit/s; a u32 filter
    # sends datagrams whose sequence is odd (its last byte, the payload's 6th) to the slow class
    "tc qdisc add dev {out} root handle 1: htb default 2",
    "tc class add dev {out} parent 1: classid 1:1 htb rate 2mbit ceil 2mbit burst 1600",
    "tc class add dev {out} parent 1: classid 1:2 htb rate 10gbit quantum 60000",
    f"tc filter add dev {{out}} parent 1: protocol ip prio 1 u32 match u8 1 1 at {IPV4_UDP + 5} flowid 1:1",
)


@pytest.fixture(scope="module")
def router():
    with Sandbox("router") as topo:
        assert topo.dut_ns is not None and topo.dut_in is not None and topo.dut_out is not None
        apply(topo.dut_ns, topo.dut_in, topo.dut_out, (), REORDERING_DUT)
        yield topo


@pytest.mark.parametrize("loop", ["c", "python"])
@pytest.mark.parametrize("name", ["udp-sendmmsg", "packet-ring", "xdp"])
def test_a_reordering_dut_is_counted(router, name, loop):
    """Every datagram arrives intact and none twice, but the odd fan-outs come late: the readers say
    how many were reordered (at most the odd ones) and how far."""
    fanouts, readers = 40, 4
    with ReaderSet(router, readers, SIZE, tuning=ReaderTuning(loop=loop)) as rs:
        with router.enter("writer"):
            writer = get(name)(router.target(rs.ports), WriterOptions(message_size=SIZE))
        with writer:
            result = OpLoop(writer, rs, MessageSource.make("crypto", SIZE)).stream(fanouts, settle=0.5).result
    assert (
        result.sequenced,
        result.counts.intact,
        result.counts.lost,
        result.counts.duplicate,
        result.counts.corrupt,
    ) == (
        True,
        fanouts * readers,
        0,
        0,
        0,
    )
    assert 0 < result.counts.reordered <= fanouts // 2 * readers
    assert result.counts.reorder_extent >= 1
    assert result.reordered_ratio == result.counts.reordered / result.counts.intact
    assert sum(t.counts.reordered for t in result.deviations.values()) == result.counts.reordered


def test_a_paced_stream_through_the_c_send_loop_is_counted(router):
    """The pacer's C loop stamps each frame's sequence as it leaves (udp-sendto's prebuilt frames)."""
    fanouts, readers = 40, 4
    with ReaderSet(router, readers, SIZE) as rs:
        with router.enter("writer"):
            writer = get("udp-sendto")(router.target(rs.ports), WriterOptions(message_size=SIZE))
        with writer:
            pacer = Pacer(ConstantSchedule(20_000, 1))
            result = OpLoop(writer, rs, MessageSource.make("crypto", SIZE), pacer).stream(fanouts, settle=0.5).result
    assert pacer.implementation == "c-loop"
    assert (result.counts.intact, result.counts.lost, result.counts.duplicate, result.counts.corrupt) == (
        fanouts * readers,
        0,
        0,
        0,
    )
    assert 0 < result.counts.reordered <= fanouts // 2 * readers


def test_compare_reports_the_reordering(router, tmp_path):
    """compare's JSON row and status carry the count, the ratio and the extent, from its own router."""
    script = tmp_path / "reorder.sh"
    script.write_text("\n".join(REORDERING_DUT) + "\n")
    out = tmp_path / "r.json"
    argv = ["compare", "--topology", "router", "--dut-setup", str(script), "--mode", "stream"]
    argv += ["--writers", "udp-sendmmsg", "--readers", "4", "--size", str(SIZE), "--benchtime", "40x"]
    code, err = run_cli([*argv, "--json", str(out)])
    assert code == 0, err
    (row,) = json.loads(out.read_text())["results"]
    assert row["all_intact"] and row["duplicate"] == 0
    assert row["reordered"] > 0 and row["reorder_extent"] >= 1
    assert row["reordered_ratio"] == pytest.approx(row["reordered"] / row["intact"])
    assert all(s["reorder_extent"] is not None for s in row["samples"])


def test_an_rfc2544_trial_records_the_reordering(router):
    """A paced trial through the reordering DUT: its record carries the count, ratio and extent."""
    device = LiveDevice("udp-sendmmsg", router, 4)
    try:
        result = device.run(Trial("throughput", FrameSize.of(512), rate_pps=2000.0, duration_s=0.2, drain_s=0.3))
    finally:
        device.close()
    record = TrialRecord.of(result, Outcome.PASS)
    assert (record.sent, record.intact, record.lost, record.duplicate) == (400, 400, 0, 0)
    assert 0 < record.reordered <= 200 and record.reorder_extent is not None and record.reorder_extent >= 1
    assert record.reordered_ratio == record.reordered / 400
    assert any("reordered" in note for note in record.notes)


@pytest.mark.parametrize("loop", ["c", "python"])
def test_injected_duplicate_and_swap_are_counted_exactly(veth, loop):
    """A raw socket sends port A 0 1 1 2 3 (1 twice) and port B 0 2 1 3 (1 and 2 swapped): one
    duplicate on A, one reordered datagram of extent 1 on B, nothing lost, the rest in order."""
    with ReaderSet(veth, 2, SIZE, tuning=ReaderTuning(loop=loop)) as rs:
        MessageSource.make("crypto", SIZE).fill(rs.buffer)
        a, b = rs.ports

        def frame(slot: int, sequence: int) -> bytes:
            body = sequence_bytes(sequence) + bytes(rs.messages[slot][SEQUENCE_BYTES:])
            return sandbox_frame(veth, rs.ports[slot], body)

        rs.begin_stream(fanouts=4)
        inject(veth, [frame(0, k) for k in (0, 1, 1, 2, 3)] + [frame(1, k) for k in (0, 2, 1, 3)])
        result = rs.end_stream(4, settle=0.2)
    assert (result.sequenced, result.counts.intact, result.counts.lost, result.counts.corrupt) == (True, 8, 0, 0)
    assert (result.counts.duplicate, result.counts.reordered, result.counts.reorder_extent) == (1, 1, 1)
    assert result.duplicate_ports == [a] and result.reordered_ports == [b]
    port_b = result.deviations[b]
    assert (port_b.counts.in_order, port_b.counts.reordered, port_b.counts.reorder_extent, port_b.counts.duplicate) == (
        3,
        1,
        1,
        0,
    )
    assert "1 reordered (extent up to 1)" in result.describe()


def test_a_forged_sequence_is_corrupt(veth):
    """The sequence is part of the content: a wrong check word, or a sequence past the stream, is corrupt."""
    with ReaderSet(veth, 1, SIZE) as rs:
        MessageSource.make("crypto", SIZE).fill(rs.buffer)
        rest = bytes(rs.messages[0][SEQUENCE_BYTES:])
        bad_check = bytearray(sequence_bytes(1))
        bad_check[7] ^= 1
        rs.begin_stream(fanouts=2)
        frames = [sequence_bytes(0) + rest, bytes(bad_check) + rest, sequence_bytes(2) + rest, sequence_bytes(1) + rest]
        inject(veth, [sandbox_frame(veth, rs.ports[0], body) for body in frames])
        result = rs.end_stream(2, settle=0.2)
    assert (result.counts.intact, result.counts.corrupt, result.counts.lost, result.counts.reordered) == (2, 2, 0, 0)


def test_a_crafted_capture_with_swapped_and_repeated_frames_is_counted_exactly(tmp_path):
    """Replayed with --rewrite, two sequenced flows whose capture holds frames swapped and repeated on
    purpose: flow 0 has 3<->4 and 10<->13 swapped (RFC 4737: 3 after 4, then 11, 12 and 10 after 13:
    four reordered, the largest extent 3) and 7 twice; flow 1 is clean but for 2 held three times."""
    frames = capture_frames(2, 20, size=120, sequenced=True)
    flow0, flow1 = frames[0::2], frames[1::2]
    flow0[3], flow0[4] = flow0[4], flow0[3]
    flow0[10], flow0[13] = flow0[13], flow0[10]
    flow0.insert(8, flow0[7])
    flow1[3:3] = [flow1[2], flow1[2]]
    path = write_pcap(tmp_path / "crafted.pcap", flow0 + flow1)
    result = rawpacer.send(path, topology="veth", writer="packet-raw", rate="20k")
    zero, one = (f.verdict for f in result.flows)
    assert (zero.sent, zero.intact, zero.lost, zero.duplicated, zero.repeated) == (21, 20, 0, 1, 1)
    assert (zero.reordered, zero.reorder_extent, zero.late) == (4, 3, 0)
    assert (one.sent, one.intact, one.duplicated, one.reordered, one.reorder_extent) == (22, 20, 2, 0, 0)
    assert (result.total.reordered, result.total.reorder_extent) == (4, 3)
    out = tmp_path / "r.json"
    done = cli("replay", str(path), "--rewrite", "--topology", "veth", "--rate", "20k", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "reordered" in done.stdout
    written = json.loads(out.read_text())
    assert [(f["reordered"], f["reorder_extent"]) for f in written["flows"]] == [(4, 3), (0, 0)]
