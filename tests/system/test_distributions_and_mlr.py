"""Issue 22's figures a reviewer can re-analyse, live and short: --hdr logs that the hdrhistogram package
loads (compare, send, rfc2544), compare's bootstrap intervals, and rfc2544 --search mlr finding a tbf's rate."""

from __future__ import annotations

import json

import numpy as np
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from helpers import run_cli

from rawpacer.bench import histograms
from rawpacer.bench.methodology.result import l2_mbit
from rawpacer.sandbox import pid_namespaces

TBF_MBIT = 50.0
LOOSE = 0.15
"""The live search's bound: ±15 % of the tbf's rate (short trials, a shared 2-core VM)."""


def intervals(path) -> list[HdrHistogram]:
    """Every interval histogram of an .hlog, read with the hdrhistogram package's own reader."""
    reader = HistogramLogReader(str(path), HdrHistogram(histograms.LOWEST_NS, histograms.HIGHEST_NS, 3))
    found = []
    while (next_one := reader.get_next_interval_histogram()) is not None:
        found.append(next_one)
    return found


def test_compare_writes_loadable_op_time_logs_and_intervals(tmp_path):
    out, hdr = tmp_path / "c.json", tmp_path / "hdr"
    code, err = run_cli(
        ["compare", "--writers", "udp-sendto,udp-sendmmsg", "--readers", "10", "--benchtime", "30x"]
        + ["--count", "3", "--json", str(out), "--hdr", str(hdr)]
    )
    assert code == 0, err
    rows = json.loads(out.read_text())["results"]
    for row in rows:
        logged = intervals(hdr / f"{row['writer']}-10r-op_ns.hlog")
        assert [h.get_total_count() for h in logged] == [s["ops"] for s in row["samples"]]
        for sample, found in zip(row["samples"], logged):
            assert histograms.summary(found) == histograms.summary(histograms.decode(sample["op_ns_hdr"]))
            exact = sample["ns_per_op_p99"]
            assert abs(found.get_value_at_percentile(99) - exact) <= 2 * histograms.PRECISION * exact + 1
        ci = row["ns_per_op_ci"]
        assert ci["low"] <= row["ns_per_op"] <= ci["high"] and ci["resamples"] == 2000
    assert rows[0]["speedup_vs_udp_sendto_ci"]["estimate"] == 1.0
    assert pid_namespaces() == []


def test_send_logs_each_paced_fanouts_gaps(tmp_path):
    code, err = run_cli(
        ["send", "--writer", "udp-sendmmsg", "--readers", "50", "--rate", "5k", "--ops", "3", "--hdr", str(tmp_path)]
    )
    assert code == 0, err
    logged = intervals(tmp_path / "udp-sendmmsg-gap_dev_ns.hlog")
    assert [h.get_total_count() for h in logged] == [49, 49, 49]  # 50 departures each, 49 gaps


def test_mlr_finds_the_rate_of_a_tbf_and_logs_latency(tmp_path):
    out, hdr = tmp_path / "r.json", tmp_path / "hdr"
    code, err = run_cli(
        ["rfc2544", "--search", "mlr", "--topology", "router", "--dut", f"tbf:{TBF_MBIT:g}mbit"]
        + ["--writers", "udp-sendmmsg", "--readers", "10", "--sizes", "1024", "--tests", "throughput,latency"]
        + ["--trial", "1s", "--warmup", "0.1s", "--resolution", "1%", "--json", str(out), "--hdr", str(hdr)]
    )
    assert code == 0, err
    entry = json.loads(out.read_text())["results"][0]
    assert entry["ndr_pps"] is not None and entry["pdr_pps"] >= entry["ndr_pps"]
    found = l2_mbit(entry["ndr_pps"], 1024)  # 6,127 pps; MLRsearch's floor is 4,000 (20 / 0.5 % in 1 s)
    assert found is not None and abs(found - TBF_MBIT) <= LOOSE * TBF_MBIT, (found, entry["notes"])
    above = [t for t in entry["trials"] if t["test"] == "throughput" and t["rate"] > entry["ndr_pps"]]
    assert sum(t["dut_drops"] for t in above) > 0  # the tbf's own counters say it dropped above the NDR
    assert entry["ndr_limited_by"] in ("dut", "writer")  # "writer": the lowest failure above was the host's
    assert set(entry["latency_at_pdr"]) == {"10", "50", "90"}
    for key, measured in entry["latency_at_pdr"].items():
        logged = intervals(hdr / f"udp-sendmmsg-1024B-latency_ns-pdr{key}.hlog")
        assert sum(h.get_total_count() for h in logged) == measured["count"] > 0
    assert np.isfinite(entry["latency_at_pdr"]["50"]["latency_ns"]["p99"])
