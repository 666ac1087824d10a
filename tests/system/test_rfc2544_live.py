"""RFC 2544 on a live kernel path, kept small (few readers, short trials, two sizes): the search finds
a rate a separate paced stream then delivers without loss; Ctrl-C keeps finished trials. Precision and the 5-minute target are the
benchmark's (docs/rfc2544.md)."""

from __future__ import annotations

import json

from helpers import cli_process, interrupt, make_writer, wait_until

from rawpacer.bench import rfc2544
from rawpacer.bench.oploop import OpLoop
from rawpacer.messages import MessageSource
from rawpacer.pacing import ConstantSchedule, Pacer
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Sandbox, pid_namespaces

SMALL = {"readers": 10, "sizes": "64,512", "trial": "0.15s", "resolution": "10%", "warmup": "0.05s"}


def test_a_search_finds_a_rate_that_a_separate_stream_delivers_whole(tmp_path):
    path = tmp_path / "r.json"
    run = rfc2544(json=str(path), writers="udp-sendmmsg", tests="throughput,latency,loss", **SMALL)
    assert [(e.writer, e.frame_size) for e in run.results] == [("udp-sendmmsg", 64), ("udp-sendmmsg", 512)]
    saved = json.loads(path.read_text())
    assert len(saved["results"]) == 2 and saved["params"]["readers"] == 10
    for entry in run.results:
        assert entry.finished and entry.error is None
        rate = entry.throughput_pps or entry.throughput_candidate_pps
        assert rate is not None and 0 < rate <= (entry.writer_max_pps or 0) * 1.05
        assert entry.loss_curve and entry.loss_curve[0][0] == 100.0
        assert entry.reader_capacity_pps is not None and entry.reader_capacity_pps > 0
        if entry.throughput_pps is not None:
            assert entry.latency_source == "writer-clock" and entry.latency_ns is not None
            assert 0 < entry.latency_ns["p50"] < 50e6
    rate = run.results[1].throughput_pps or run.results[1].throughput_candidate_pps
    assert rate is not None
    with (
        Sandbox("lo") as topo,
        ReaderSet(topo, 10, 470) as readers,
        make_writer(topo, "udp-sendmmsg", readers.ports, message_size=470) as writer,
    ):
        loop = OpLoop(writer, readers, MessageSource.make("crypto", 470), Pacer(ConstantSchedule(rate * 0.9, 10)))
        outcome = loop.stream(100)
    assert (outcome.result.lost, outcome.result.intact) == (0, 1000)


def test_ctrl_c_keeps_the_finished_trials_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "cut.json"
    args = ("rfc2544", "--writers", "udp-sendto", "--readers", "10", "--trial", "0.3s", "--json", str(path))

    def two_trials() -> bool:
        results = json.loads(path.read_text())["results"] if path.exists() else []
        return bool(results) and len(results[0]["trials"]) >= 2

    with cli_process(*args) as process:
        wait_until(two_trials, timeout=60, step=0.1)
        out, err = interrupt(process)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    saved = json.loads(path.read_text())
    assert saved["interrupted"] is True and len(saved["results"][0]["trials"]) >= 2
    assert "throughput" in out  # the tables of what finished are printed on the way out
    assert not pid_namespaces(process.pid)
