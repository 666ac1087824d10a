"""``rawpacer compare``: input checks, Go-style calibration, and small real runs in namespaces."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import JSON_ROW_KEYS, cli, cli_process, interrupt

from rawpacer.bench.calibrate import MAX_GROWTH, Benchtime, Timed, calibrate, parse_benchtime, predict_n
from rawpacer.bench.golines import parse_lines
from rawpacer.errors import UsageError
from rawpacer.sandbox import pid_namespaces

TINY = ["--writers", "udp-sendto,udp-sendmmsg", "--benchtime", "50ms", "--readers", "10"]
KEYS = JSON_ROW_KEYS


def compare(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli("compare", *args, timeout=120, env=env)


def test_with_go_without_go_on_path_says_how_to_install():
    env = dict(os.environ, PATH="/nonexistent")
    done = compare("--with-go", env=env)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "apt-get install golang-go" in done.stderr


@pytest.mark.parametrize("text, seconds", [("1s", 1.0), ("0.5", 0.5), ("200ms", 0.2), ("1500us", 0.0015)])
def test_parse_benchtime(text, seconds):
    assert parse_benchtime(text) == Benchtime(seconds)


def test_parse_benchtime_op_count_and_errors():
    assert parse_benchtime("50x").ops == 50
    assert parse_benchtime("50x").go_flag() == "50x"
    assert parse_benchtime("200ms").go_flag() == "200000000ns"
    for bad in ("0", "0x", "1.5x", "1h", "", "s"):
        with pytest.raises(UsageError):
            parse_benchtime(bad)


def test_predict_n_follows_go():
    assert predict_n(1e9, 1, 1e6) == MAX_GROWTH  # 1 ms/op would want 1200 ops: capped at 100x
    assert predict_n(1e9, 100, 1e8) == 1200  # 1 ms/op, 20% headroom
    assert predict_n(1e9, 10, 9.99e8) == 13  # rounds up
    assert predict_n(1e9, 10, 2e9) == 11  # always at least one more


def test_calibrate_grows_until_benchtime():
    calls = []

    def run(n: int) -> Timed[None]:
        calls.append(n)
        return Timed(n, n * 3_000_000, None)  # 3 ms per op

    runs = calibrate(run, Benchtime(1.0))
    assert calls == [1, 100, 400]
    assert runs[-1].elapsed_ns >= 1e9
    assert [r.n for r in calibrate(run, Benchtime(ops=7))] == [7]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    done = compare(*TINY, "--json", str(out / "r.json"), "--plot", str(out / "r.png"))
    return done, out


def test_tiny_run_table_json_and_png(tiny_run):
    done, out = tiny_run
    assert done.returncode == 0, done.stderr
    assert "udp-sendto" in done.stdout and "udp-sendmmsg" in done.stdout and "ns/op" in done.stdout
    data = json.loads((out / "r.json").read_text())
    assert {"cpu", "cores", "kernel", "python"} <= data["machine"].keys()
    assert data["params"]["readers"] == [10] and data["params"]["benchtime"] == "0.05s"
    rows = {r["writer"]: r for r in data["results"]}
    assert set(rows) == {"udp-sendto", "udp-sendmmsg"}
    for row in rows.values():
        assert KEYS <= row.keys()
        assert row["readers"] == 10 and row["error"] is None
        assert row["sent"] == row["ops"] * 10
        assert row["delivered"] == row["intact"] == row["sent"]
        assert row["payload_bytes"] == row["delivered"] * 1500
        assert row["ns_per_op"] > 0 and row["allocs_per_op"] is not None and row["bytes_per_op"] is not None
    assert rows["udp-sendto"]["speedup_vs_udp_sendto"] == 1.0
    assert (out / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_go_format_lines_parse():
    done = compare(*TINY, "--format", "go", "--benchtime", "5x")
    assert done.returncode == 0, done.stderr
    lines = parse_lines(done.stdout)
    assert [(line.name, line.n) for line in lines] == [
        ("BenchmarkFanout/udp-sendto", 5),
        ("BenchmarkFanout/udp-sendmmsg", 5),
    ]
    assert {line.procs for line in lines} == {len(os.sched_getaffinity(0))}  # GOMAXPROCS: the CPUs we may use
    assert all({"ns/op", "B/op", "allocs/op"} <= line.metrics.keys() for line in lines)


def test_count_reports_median_min_max(tmp_path):
    path = tmp_path / "c.json"
    done = compare(*TINY, "--benchtime", "3x", "--count", "3", "--json", str(path), "--format", "go")
    assert done.returncode == 0, done.stderr
    names = [line.name.split("/")[1] for line in parse_lines(done.stdout)]
    assert names == ["udp-sendto", "udp-sendmmsg"] * 3  # interleaved rounds
    for row in json.loads(path.read_text())["results"]:
        values = sorted(s["ns_per_op"] for s in row["samples"])
        assert len(values) == 3
        assert (row["ns_per_op_range"][0], row["ns_per_op"], row["ns_per_op_range"][1]) == tuple(values)
        assert row["ops"] == 9 and row["sent"] == 90


def test_sigint_prints_partial_results_and_cleans_up():
    args = ("compare", "--writers", "udp-sendto,udp-sendmmsg", "--readers", "10", "--benchtime", "1s", "--format", "go")
    with cli_process(*args) as process:
        first = process.stderr.readline()  # without a terminal: one line per finished writer
        names = pid_namespaces(process.pid)
        assert first.startswith("done udp-sendto"), first
        assert names, "the sandbox should still exist while the second writer runs"
        out, err = interrupt(process)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    benchmarks = [line.name for line in parse_lines(out)]
    assert benchmarks == ["BenchmarkFanout/udp-sendto"]  # the finished writer, printed on the way out
    assert not pid_namespaces(process.pid)
    assert not any(os.path.exists(f"/run/netns/{name}") for name in names)


def test_readers_sweep_reports_ns_per_packet(tmp_path):
    path = tmp_path / "s.json"
    done = compare("--writers", "udp-sendmmsg", "--readers", "5,20", "--benchtime", "3x", "--json", str(path))
    assert done.returncode == 0, done.stderr
    assert "readers sweep" in done.stdout
    data = json.loads(path.read_text())
    assert [r["readers"] for r in data["results"]] == [5, 20]
    (sweep,) = data["sweep"]
    points = {p["readers"]: p["ns_per_packet"] for p in sweep["points"]}
    assert sweep["ratio_last_first"] == pytest.approx(points[20] / points[5])


def test_pcap_option_records_every_raw_frame_sent(tmp_path):
    from rawpacer.headers import parse_frame
    from rawpacer.pcap import read_pcap

    path = tmp_path / "run.json"
    done = compare(
        "--writers",
        "udp-sendto,packet-raw",
        "--readers",
        "4",
        "--benchtime",
        "3x",
        "--pcap",
        str(tmp_path / "frames.pcap"),
        "--json",
        str(path),
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "frames-udp-sendto-4.pcap").exists()  # standard writers build no frames
    _, frames = read_pcap(tmp_path / "frames-packet-raw-4.pcap")
    row = next(r for r in json.loads(path.read_text())["results"] if r["writer"] == "packet-raw")
    assert len(frames) >= row["sent"] > 0
    parsed = [parse_frame(f) for f in frames]
    assert all(p.ip_checksum_ok and p.udp_checksum_ok for p in parsed)
    assert {p.dport for p in parsed} == set(range(5001, 5005))


def test_pcap_into_a_missing_directory_is_exit_2():
    done = compare("--pcap", "/nonexistent-dir/frames.pcap")
    assert done.returncode == 2 and "--pcap" in done.stderr and "Traceback" not in done.stderr
