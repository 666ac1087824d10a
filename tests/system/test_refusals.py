"""Writers that refuse or cannot run: the row says why, the others run, and the exit code says so
only when the user named that writer; fragment ids never hit the 0 an IP_HDRINCL socket rewrites."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from collections.abc import Sequence

import pytest
from helpers import RAW_WRITERS, ROOT, make_writer, run_cli

from rawpacer.bench.calibrate import parse_benchtime
from rawpacer.bench.oploop import OpLoop
from rawpacer.bench.runner import Pass
from rawpacer.messages import MessageSource
from rawpacer.pcap import read_pcap
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Sandbox
from rawpacer.writers import packet_raw
from rawpacer.writers.base import Fit, Message, WriterOptions
from rawpacer.writers.udp_sendto import UdpSendto

QUICK = ["compare", "--readers", "2", "--benchtime", "3x"]


def no_packet_sockets(ifname: str) -> None:
    """A kernel without AF_PACKET, as socket(2) would say it."""
    raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")


def rows(path) -> dict[str, dict]:
    return {row["writer"]: row for row in json.loads(path.read_text())["results"]}


def test_a_strict_refusal_of_a_named_writer_is_an_error_exit(tmp_path):
    path = tmp_path / "r.json"
    args = ["--writers", "packet-raw,udp-sendto", "--fit", "strict", "--topology", "veth", "--mtu", "1400"]
    code, err = run_cli([*QUICK, *args, "--json", str(path)])
    found = rows(path)
    assert code == 1 and "packet-raw did not run" in err
    assert "message too long" in found["packet-raw"]["error"] and found["udp-sendto"]["all_intact"]


def test_a_refusal_reads_as_refused_with_its_reason_not_an_exception_class(tmp_path):
    path = tmp_path / "r.json"
    args = ["--writers", "packet-raw", "--topology", "veth", "--mtu", "576", "--fit", "strict", "--benchtime", "5x"]
    done = subprocess.run(
        [sys.executable, "-m", "rawpacer.cli", "compare", *args, "--json", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    error = rows(path)["packet-raw"]["error"]
    assert done.returncode == 1 and "packet-raw did not run" in done.stderr
    assert error.startswith("refused: message too long: 1500-byte messages need 1528-byte IPv4 datagrams")
    assert "refused: message too long" in done.stdout and "Error" not in done.stdout + done.stderr


@pytest.mark.parametrize("named", [True, False])
def test_a_writer_the_kernel_cannot_run_is_unavailable_and_the_rest_run(named, monkeypatch, tmp_path):
    monkeypatch.setattr(packet_raw, "open_packet_socket", no_packet_sockets)
    path = tmp_path / "r.json"
    writers = ["--writers", "udp-sendto,packet-raw,packet-ring"] if named else []
    code, err = run_cli([*QUICK, *writers, "--json", str(path)])
    found = rows(path)
    reason = "the kernel here does not support it (Address family not supported by protocol)"
    assert found["packet-raw"]["error"] == f"unavailable: {reason}"
    assert found["udp-sendto"]["all_intact"] and found["packet-ring"]["all_intact"]
    assert (code, "packet-raw did not run" in err) == ((1, True) if named else (0, False))


@pytest.mark.parametrize("name", RAW_WRITERS)
def test_fragment_ids_wrap_past_zero_and_every_datagram_reassembles(name, tmp_path):
    pcap = str(tmp_path / "wrap.pcap")
    with (
        Sandbox("veth", mtu=576) as topo,
        ReaderSet(topo, 4, 1000) as readers,
        make_writer(topo, name, readers.ports, message_size=1000, fit=Fit.FRAGMENT, pcap=pcap) as writer,
    ):
        writer._ip_id = 0xFFFD  # the next ids are 0xFFFE, 0xFFFF, then they wrap
        outcomes = OpLoop(writer, readers, MessageSource.make("crypto", 1000)).fanouts(2)
        ethernet = writer.ethernet
    assert [(o.result.counts.intact, o.result.counts.lost) for o in outcomes] == [(4, 0), (4, 0)]
    offset = 14 if ethernet else 0
    ids = {int.from_bytes(frame[offset + 4 : offset + 6], "big") for frame in read_pcap(pcap)[1]}
    assert {0xFFFE, 0xFFFF, 1, 2} <= ids and 0 not in ids


class SkipsOneEveryThird(UdpSendto):
    """udp-sendto that leaves the first reader out of every third fan-out: a loss on purpose."""

    calls = 0

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        self.calls += 1
        return super()._send(messages, start + (self.calls % 3 == 0), stop, replay)


def test_ops_that_wait_for_a_missing_datagram_are_counted_and_kept_out_of_the_timing():
    with Sandbox("lo") as topo, ReaderSet(topo, 10, 200) as readers:
        with topo.enter("writer"):
            writer = SkipsOneEveryThird(topo.target(readers.ports), WriterOptions(message_size=200))
        with writer:
            loop = OpLoop(writer, readers, MessageSource.make("fast", 200))
            sample, notes = Pass(loop).measure(parse_benchtime("30x"))
            waits = [o.result.wait_s for o in loop.fanouts(6) if o.result.timed_out]
    assert (sample.ops_incomplete, sample.ops, sample.counts.lost) == (10, 20, 10)
    assert sample.ns_per_op is not None and sample.ns_per_op < 50e6  # a 1 s wait in the mean would be > 300 ms
    assert any("ops_incomplete" in note for note in notes)
    assert len(waits) == 2 and max(waits) < 0.5  # the silence is a multiple of the typical op, not a second
