"""Shaped streams in real namespaces: IMIX sizes and varied fields reach the readers intact, every
datagram checked, counted per size in IMIX's proportions (issue 21, item 3)."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

import rawpacer
from rawpacer.cli import main

IMIX_SHARE = {64: 7 / 12, 594: 4 / 12, 1518: 1 / 12}
VETH_STREAM = {"readers": 4, "mode": "stream", "topology": "veth"}
"""compare's stream into 4 readers across a veth pair."""
SHORT_SEARCH = {"readers": 5, "tests": "throughput", "trial": "0.2s", "warmup": "0s", "resolution": "10%"}
"""A short RFC 2544 throughput search: a few trials to check datagram by datagram, not a figure."""


def every_datagram_intact(sample: rawpacer.Sample) -> None:
    counts = sample.counts
    assert sample.sent > 0 and counts.delivered == sample.sent and counts.intact == sample.sent
    assert counts.lost == counts.corrupt == counts.duplicate == 0


@pytest.mark.parametrize(
    ("writer", "vary"),
    [("packet-raw", ["sport=1000-2000"]), ("ip-raw", ["sport=1-65535:random", "src-ip=198.18.0.1-198.18.0.99"]),
     ("udp-sendto", ["dport=5001-5010:random"])],
)  # fmt: skip
def test_a_compare_stream_of_imix_arrives_intact_per_size(writer, vary):
    report = rawpacer.compare(
        writers=writer, readers=10, mode="stream", benchtime="600x", sizes="imix", vary=vary, seed=11
    )
    (row,) = report.results
    assert not row.error, row.error
    (sample,) = row.samples
    every_datagram_intact(sample)
    assert sample.sizes is not None and set(sample.sizes) == set(IMIX_SHARE)
    assert sum(c["sent"] for c in sample.sizes.values()) == sample.sent == 6000
    for size, counts in sample.sizes.items():
        assert counts["sent"] == counts["delivered"] == counts["intact"]
        assert counts["sent"] == pytest.approx(6000 * IMIX_SHARE[size], abs=12)  # 7:4:1 to within a pool's rest
    assert any(note.startswith("sizes: 64 B") for note in row.notes)
    assert report.params["sizes"] == "64:7,594:4,1518:1" and report.params["vary_seed"] == 11


@pytest.mark.parametrize("rate", [None, "20k"], ids=["unpaced", "paced-burst-1"])
@pytest.mark.parametrize(
    ("writer", "vary"),
    [("packet-ring", ["dport=5001-5004:random", "sport=1000-1999", "src-ip=198.18.0.1-198.18.0.50:random"]),
     ("xdp", ["dport=5001-5004", "sport=1-65535:random"]),
     ("udp-sendmmsg", ["dport=5001-5004:random"])],
)  # fmt: skip
def test_an_imix_varied_stream_leaves_through_each_writers_engine(writer, vary, rate):
    report = rawpacer.compare(
        writers=writer, **VETH_STREAM, benchtime="300x", sizes="imix", vary=vary, seed=5, rate=rate, burst=1,
    )  # fmt: skip
    (row,) = report.results
    assert not row.error, row.error
    (sample,) = row.samples
    every_datagram_intact(sample)
    assert sample.sent == 1200 and sample.sizes is not None
    assert {size: counts["intact"] for size, counts in sample.sizes.items()} == {64: 700, 594: 400, 1518: 100}
    if rate is not None:
        assert sample.pacing is not None and sample.pacing["pacer"]["implementation"] == "c-loop"


def test_a_paced_varied_stream_on_veth_arrives_intact():
    report = rawpacer.compare(
        writers="packet-raw",
        **VETH_STREAM,
        rate="20k",
        benchtime="0.2s",
        sizes="128:1,1000:3",
        vary=["dport=5001-5004:random", "sport=2000-2999:random"],
    )
    (sample,) = report.results[0].samples
    every_datagram_intact(sample)
    assert sample.sizes is not None and sample.sizes[1000]["intact"] == pytest.approx(
        3 * sample.sizes[128]["intact"], rel=0.1
    )
    assert sample.pacing is not None and sample.pacing["rate_achieved_pps"] is not None


def test_send_prints_what_each_size_got(tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["send", "--writer", "packet-raw", "--readers", "5", "--ops", "240", "--sizes", "imix",
                     "--vary", "sport=1000-1999:random", "--seed", "3"])  # fmt: skip
    text = out.getvalue()
    assert code == 0, text
    assert "shaped stream: 1200 datagrams" in text and "1200 delivered, 1200 intact" in text
    assert "per size: 64 B 700/700 intact of 700 sent, 594 B 400/400 intact of 400 sent, 1518 B 100/100" in text


def test_the_json_records_the_shape_and_the_sizes(tmp_path):
    path = tmp_path / "r.json"
    code = main(["compare", "--writers", "packet-raw", "--readers", "3", "--mode", "stream", "--benchtime", "40x",
                 "--sizes", "64:1,1518:1", "--json", str(path)])  # fmt: skip
    assert code == 0
    data = json.loads(path.read_text())
    sample = data["results"][0]["samples"][0]
    assert sample["sizes"] == {
        "64": {"sent": 60, "delivered": 60, "intact": 60},
        "1518": {"sent": 60, "delivered": 60, "intact": 60},
    }


def test_rfc2544_trials_of_a_varied_stream_are_checked_per_datagram():
    run = rawpacer.rfc2544(
        writers="packet-raw", **SHORT_SEARCH, vary=["dport=5001-5005:random", "sport=1000-1999"], seed=4, sizes="128"
    )
    (entry,) = run.results
    assert entry.writer_max_pps and entry.trials  # a loaded host may make every trial writer-limited: not judged here
    for trial in entry.trials:
        assert trial.sent > 0 and trial.delivered == trial.intact == trial.sent and trial.lost == 0
    assert run.params["vary"] == ["dport=5001-5005:random", "sport=1000-1999:inc"] and run.params["vary_seed"] == 4


IPV6_MIX = {"ip_version": 6, "sizes": "78:7,594:4,1518:1"}


@pytest.mark.parametrize(
    ("writer", "extra", "vary"),
    [("packet-raw", IPV6_MIX, ["flow-label=0-1048575:random", "src-ip=2001:2::1-2001:2::ff"]),
     ("ip-raw", IPV6_MIX, ["sport=1-65535:random", "dport=5001-5004"]),
     ("udp-sendto", IPV6_MIX, ["dport=5001-5004:random"]),
     ("packet-raw", {"vlan": 5, "sizes": "imix"}, ["vlan=5", "sport=1-65535:random"])],
    ids=["ipv6", "ipv6-ip-raw", "ipv6-udp-sendto", "vlan"],
)  # fmt: skip
def test_ipv6_and_tagged_shaped_streams_on_veth_arrive_intact(writer, extra, vary):  # IPv6 frames from 78 (RFC 5180)
    report = rawpacer.compare(
        writers=writer, **VETH_STREAM, benchtime="300x", vary=vary, **extra,
    )  # fmt: skip
    (row,) = report.results
    assert not row.error, row.error
    (sample,) = row.samples
    every_datagram_intact(sample)
    assert sample.sizes is not None and sample.sizes[1518]["intact"] == 100  # 1200 frames, 1 in 12


def test_rfc2544_runs_an_imix_row_beside_a_fixed_size(tmp_path):
    run = rawpacer.rfc2544(writers="packet-raw", **SHORT_SEARCH, sizes="128,imix")
    assert [e.label for e in run.results] == ["128", "imix"]
    imix = run.find("packet-raw", "imix")
    assert imix is not None and imix.error is None and imix.finished
    assert imix.mean_frame == pytest.approx((7 * 64 + 4 * 594 + 1518) / 12)
    assert (imix.throughput_pps or imix.throughput_candidate_pps or 0) > 0
    assert imix.throughput_mbit is None or imix.throughput_mbit == pytest.approx(
        imix.throughput_pps * imix.mean_frame * 8 / 1e6
    )
    counts = imix.size_counts
    assert sorted(counts, key=int) == ["64", "594", "1518"]
    assert sum(c["sent"] for c in counts.values()) == sum(t.sent for t in imix.trials)
    sent = {size: c["sent"] for size, c in counts.items()}
    assert abs(sent["64"] - 7 * sent["1518"]) <= 7 and abs(sent["594"] - 4 * sent["1518"]) <= 4  # 7:4:1, per trial
    assert run.find("packet-raw", 128).size_counts == {}
    assert run.params["sizes"] == [128, "imix"]
