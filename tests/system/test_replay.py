"""rawpacer replay and rawpacer.send in real namespaces: every rewritten datagram arrives intact per
flow on lo, veth and through a router, from pcap and pcapng, through each link-header writer; a
duplicate the capture holds and a datagram the kernel drops are counted per flow; frames over the
MTU are fitted; the CLI's output, JSON and refusals."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from helpers import capture_frames, cli, cli_process, interrupt, run_cli, wait_until, write_pcap
from scapy.all import Ether, PcapNgWriter

import rawpacer
from rawpacer.bench.config import make_config
from rawpacer.bench.replay import file_source, run
from rawpacer.bench.replayplan import Timing
from rawpacer.errors import UsageError
from rawpacer.host.placement import parse_cpu
from rawpacer.sandbox import pid_namespaces


@pytest.fixture
def capture(tmp_path):
    return write_pcap(tmp_path / "three-flows.pcap", capture_frames(3, 20))


@pytest.mark.parametrize(
    ("topology", "writer"),
    [("lo", "packet-raw"), ("veth", "packet-ring"), ("veth", "xdp"), ("router", "packet-raw"), ("lo", "scapy")],
)
def test_every_datagram_arrives_intact_per_flow(capture, topology, writer):
    result = rawpacer.send(str(capture), writer=writer, topology=topology, rate="20k")
    assert [(f.flow, f.dst, f.verdict.sent, f.verdict.intact) for f in result.flows] == [
        (n, f"10.0.0.{n + 1}", 20, 20) for n in range(3)
    ]
    assert result.ok and result.sent == 60 and result.pacing["datagrams"] == 60
    assert result.interfaces["writer_tx_packets"] >= 60
    # the writers the engine moves send each paced chunk from C; scapy waits in Python
    assert result.pacer["implementation"] == ("c" if writer == "scapy" else "c-loop")
    assert result.pacer["departures"] == 60
    assert pid_namespaces() == []


def test_pcapng_with_captured_timing_and_loops(tmp_path):
    path = tmp_path / "flows.pcapng"
    writer = PcapNgWriter(str(path))
    for i, frame in enumerate(capture_frames(2, 10)):
        packet = Ether(frame)
        packet.time = 1_700_000_000 + i * 0.0002
        writer.write(packet)
    writer.close()
    result = rawpacer.send(path, topology="veth", loop=3)
    assert result.total.sent == 60 and result.total.intact == 20 and result.total.repeated == 40
    assert result.total.duplicated == 40 and result.ok
    assert result.pacer["departures"] == 60 and result.pacing["rate_target_pps"] == pytest.approx(5000, rel=0.01)


def test_a_duplicate_the_capture_holds_and_a_datagram_the_kernel_drops_are_counted(tmp_path):
    frames = capture_frames(2, 5)
    broken = bytearray(frames[3])
    broken[-1] ^= 0xFF  # its UDP checksum no longer holds: the readers' kernel drops it
    path = write_pcap(tmp_path / "c.pcap", [*frames[:3], frames[2], bytes(broken), *frames[4:]])
    result = rawpacer.send(path, topology="veth", topspeed=True)
    flows = {f.flow: f.verdict for f in result.flows}
    assert (flows[0].sent, flows[0].duplicated, flows[0].repeated, flows[0].lost) == (6, 1, 1, 0)
    assert (flows[1].sent, flows[1].intact, flows[1].lost) == (5, 4, 1)
    assert not result.ok and "checksum" in (result.why or "")


@pytest.mark.parametrize("fit", ["trim", "fragment"])
def test_frames_over_the_mtu_are_fitted(tmp_path, fit):
    path = write_pcap(tmp_path / "big.pcap", capture_frames(2, 3, size=3000))
    result = rawpacer.send(path, topology="veth", topspeed=True, fit=fit)
    assert result.ok and result.total.intact == 6
    assert (result.counts.trimmed, result.counts.fragmented) == ((6, 0) if fit == "trim" else (0, 6))


def test_python_frames_without_times_need_a_rate():
    frames = capture_frames(1, 3)
    with pytest.raises(UsageError, match="carry no capture times"):
        rawpacer.send(frames)
    result = rawpacer.send(iter(frames), rate="1k", writer="packet-ring")
    assert result.ok and result.total.intact == 3 and result.source == "python"


def test_the_cli_prints_per_flow_rows_and_writes_json(capture, tmp_path):
    out, png = tmp_path / "r.json", tmp_path / "timing.png"
    args = ("--rewrite", "--topology", "veth", "--rate", "10k", "--json", str(out), "--plot", str(png))
    done = cli("replay", str(capture), *args)
    assert done.returncode == 0, done.stderr
    assert "total" in done.stdout and "kernel RX" in done.stdout and f"wrote {png}" in done.stdout
    written = json.loads(out.read_text())
    assert written["total"]["intact"] == 60 and len(written["flows"]) == 3 and written["ok"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_the_cli_refuses_without_rewrite_and_bad_files(capture, tmp_path):
    code, err = run_cli(["replay", str(capture)])
    assert code == 2 and "only --tx-iface allows" in err
    whole = capture.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) - 30])
    code, err = run_cli(["replay", str(cut), "--rewrite"])
    assert code == 2 and "truncated at frame 59, byte offset" in err and err.count("\n") == 1
    assert pid_namespaces() == []


def test_an_interrupted_replay_cleans_up(capture):
    with cli_process("replay", str(capture), "--rewrite", "--rate", "200", "--loop", "100") as process:
        assert wait_until(lambda: pid_namespaces(process.pid))
        _, err = interrupt(process, signal.SIGTERM)
    assert process.returncode == 130 and "interrupted; cleaned up" in err
    assert pid_namespaces(process.pid) == []


@pytest.mark.parametrize("writer", ["packet-ring", "xdp", "scapy"])
def test_top_speed_sends_chunks_from_the_writers_engine_or_frame_by_frame(tmp_path, writer):
    # more frames than one planned chunk (1024): a chunk's one buffer leaves through the engine
    # (send_pool), or through send_frames for scapy, which has none
    path = write_pcap(tmp_path / "c.pcap", capture_frames(3, 400, size=64, sequenced=True))
    result = rawpacer.send(path, writer=writer, topology="veth", topspeed=True)
    assert result.sent == 1200 and result.counts.datagrams == 1200
    assert result.ok and result.total.intact == 1200 and result.total.reordered == 0


def test_a_replay_paced_spinning_only_and_catching_up_in_bursts_says_so(tmp_path):
    path = write_pcap(tmp_path / "flows.pcap", capture_frames(2, 100))
    result = rawpacer.send(str(path), writer="packet-ring", topology="veth", rate="10k", spin="full", catch_up="burst")
    assert result.ok and result.total.intact == 200
    assert result.pacer is not None and result.pacer["spin"] == "full" and result.timing.as_dict()["spin"] == "full"
    assert result.pacer["catch_up"] == "burst" == result.timing.as_dict()["catch_up"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--cpu leaves the sender one CPU of at least two")
def test_a_pinned_replay_sends_from_its_cpu_and_plans_and_reads_on_the_others(tmp_path):
    # the second pass over the source is the planning thread's, while the sender is pinned
    path = write_pcap(tmp_path / "c.pcap", capture_frames(2, 300, size=64, sequenced=True))
    masks: list[set[int]] = []
    source = file_source(path)

    def watched():
        masks.append(os.sched_getaffinity(0))
        readers.extend(os.sched_getaffinity(int(pid)) for pid in children())
        return source()

    def children():
        return [pid for task in Path("/proc/self/task").iterdir() for pid in (task / "children").read_text().split()]

    readers: list[set[int]] = []

    allowed = os.sched_getaffinity(0)
    sender = max(allowed)
    config = make_config(writers="packet-ring", topology="veth")
    placement = parse_cpu(sender)
    result = run(watched, "packet-ring", config, Timing("topspeed"), placement=placement)
    assert result.ok and result.total.intact == 600
    assert masks == [allowed, allowed - {sender}]  # the scan, before; the plan, off the sender's CPU
    assert readers == [allowed - {sender}]  # the readers' process, started before the plan
    assert result.as_dict()["cpu"] == {"sender": sender, "others": sorted(allowed - {sender})}
    assert os.sched_getaffinity(0) == allowed  # the caller's mask is back
