"""Report formatting from constructed results: table, JSON schema, Go lines, PNG."""

from __future__ import annotations

import io
import json

from helpers import JSON_ROW_KEYS
from rich.console import Console

from rawpacer.bench.golines import parse_lines
from rawpacer.bench.result import Report, Sample, WriterResult
from rawpacer.readers.counts import Counts
from rawpacer.report.gofmt import report_lines
from rawpacer.report.jsonout import to_json, write_json
from rawpacer.report.plot import plot
from rawpacer.report.table import build_table, duration, human, print_report, status


def sample(ns_per_op: float, ops: int = 10, readers: int = 100, lost: int = 0, corrupt: int = 0) -> Sample:
    sent = ops * readers
    delivered = sent - lost
    return Sample(
        ops=ops,
        elapsed_ns=int(ns_per_op * ops),
        sent=sent,
        counts=Counts(delivered=delivered, intact=delivered - corrupt, corrupt=corrupt, lost=lost),
        payload_bytes=delivered * 1500,
        bytes_per_op=2048.0,
        allocs_per_op=12.0,
    )


def make_report(**extra: object) -> Report:
    report = Report(
        {"cpu": "Test CPU", "cores": 2, "kernel": "6.0", "os": "Linux", "python": "3.11"},
        {"mode": "fanout", "size": 1500, "payload": "crypto", "topology": "lo", "benchtime": "1s", "count": 3},
    )
    base = WriterResult("udp-sendto", 100, 1500, 1500, samples=[sample(2e6), sample(1e6), sample(3e6)])
    fast = WriterResult("packet-ring", 100, 1500, 1500, samples=[sample(5e5)])
    lossy = WriterResult("ip-raw", 100, 1500, 1400, samples=[sample(8e5, lost=3, corrupt=2)])
    broken = WriterResult("scapy", 100, 1500, 1500, error="OSError: boom")
    go = WriterResult(
        "go-net-baseline",
        100,
        1500,
        1500,
        source="go",
        samples=[
            Sample(
                ops=5,
                elapsed_ns=10_000_000,
                sent=500,
                counts=Counts(delivered=500),
                checked=False,
                payload_bytes=750_000,
                bytes_per_op=184_000.0,
                allocs_per_op=600.0,
            )
        ],
    )
    report.results = [base, fast, lossy, broken, go]
    for key, value in extra.items():
        setattr(report, key, value)
    return report


def render(report: Report) -> str:
    console = Console(file=io.StringIO(), width=250, color_system=None)
    print_report(report, console)
    return console.file.getvalue()


def test_median_and_spread_of_count_samples():
    base = make_report().find("udp-sendto")
    spread = base.spread("ns_per_op")
    assert (spread.median, spread.low, spread.high) == (2e6, 1e6, 3e6)
    assert base.total("sent") == 3000


def test_speedups_against_udp_sendto_and_go():
    report = make_report()
    assert report.speedup(report.find("packet-ring")) == 4.0
    assert report.speedup(report.find("packet-ring"), "go-net-baseline") == 4.0
    assert report.speedup(report.find("scapy")) is None


def test_table_shows_figures_loss_and_errors():
    text = render(make_report())
    assert "2 ms (1 ms–3 ms)" not in text  # ns/op uses SI figures, not durations
    assert "2M (1M–3M)" in text
    assert "4.00×" in text
    assert "vs go-net-baseline" in text
    assert "3 lost, 2 corrupt" in text
    assert "error: OSError: boom" in text
    assert "100" in text and "Test CPU" in text


def test_status_reports_each_kind_of_problem():
    report = make_report()
    assert status(report.find("packet-ring")) == "ok"
    assert status(report.find("ip-raw")) == "3 lost, 2 corrupt"
    assert status(WriterResult("x", 1, 1, 1)) == "not run"


def test_lossy_rows_are_styled_red():
    table = build_table(make_report())
    styles = [row.style for row in table.rows]
    assert styles[2] == "bold red" and styles[3] == "bold red"
    assert styles[1] is None


def test_json_has_schema_keys_and_speedups(tmp_path):
    path = write_json(make_report(), tmp_path / "out.json")
    data = json.loads(path.read_text())
    assert data["machine"]["cores"] == 2
    for row in data["results"]:
        assert JSON_ROW_KEYS <= row.keys()
    ring = next(r for r in data["results"] if r["writer"] == "packet-ring")
    assert ring["speedup_vs_udp_sendto"] == 4.0
    assert ring["all_intact"] is True
    lossy = next(r for r in data["results"] if r["writer"] == "ip-raw")
    assert lossy["lost"] == 3 and lossy["all_intact"] is False and lossy["trimmed_bytes"] == 100
    base = next(r for r in data["results"] if r["writer"] == "udp-sendto")
    assert (base["ns_per_op_range"], base["ns_per_op"]) == ([1e6, 3e6], 2e6)
    assert len(base["samples"]) == 3


def test_go_lines_round_trip_through_the_parser():
    lines = list(report_lines(make_report()))
    parsed = parse_lines("\n".join(lines))
    names = [p.name for p in parsed]
    assert names.count("BenchmarkFanout/udp-sendto") == 3
    ring = next(p for p in parsed if p.name == "BenchmarkFanout/packet-ring")
    assert ring.procs == 2 and ring.n == 10
    assert ring.metrics["ns/op"] == 500000 and ring.metrics["B/op"] == 2048 and ring.metrics["allocs/op"] == 12
    assert any(line.startswith("--- FAIL: BenchmarkFanout/scapy") for line in lines)


def test_go_lines_interleave_rounds():
    names = [p.name.split("/")[1] for p in parse_lines("\n".join(report_lines(make_report())))]
    assert names[:4] == ["udp-sendto", "packet-ring", "ip-raw", "go-net-baseline"]
    assert names[4:] == ["udp-sendto", "udp-sendto"]


def test_sweep_ratio_last_over_first():
    report = make_report()
    report.results = [
        WriterResult("udp-sendto", n, 1500, 1500, samples=[sample(ns, readers=n)])
        for n, ns in ((100, 1e6), (1000, 12e6))
    ]
    (row,) = report.sweep()
    assert row["ns_per_packet"] == {100: 10000.0, 1000: 12000.0}
    assert abs(row["ratio"] - 1.2) < 1e-9
    assert "readers sweep" in render(report)
    assert json.loads(to_json(report))["sweep"][0]["ratio_last_first"] == row["ratio"]


def test_plot_writes_a_png(tmp_path):
    path = plot(make_report(), tmp_path / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_human_and_duration():
    assert human(1234567) == "1.23M"
    assert human(None) == "-"
    assert duration(812_345) == "812 µs"
    assert duration(2_580_000) == "2.58 ms"
