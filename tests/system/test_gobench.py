"""The Go port of the seed: builds offline, runs in a sandbox, and its lines parse into rows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT

from rawpacer.bench import gobench
from rawpacer.bench.calibrate import parse_benchtime
from rawpacer.bench.golines import parse_lines
from rawpacer.sandbox import Sandbox

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go is not on PATH (apt-get install golang-go)")

GO_OUTPUT = """goos: linux
goarch: amd64
pkg: rawpacer/seedgo
cpu: AMD EPYC
BenchmarkRawUDP-2   	     470	   2577547 ns/op	  182403 B/op	     600 allocs/op
BenchmarkSample-2   	     506	   2524977.5 ns/op	  189121 B/op	     801 allocs/op
PASS
"""


@pytest.fixture(scope="module")
def binary():
    return gobench.build()


def test_parse_go_output():
    raw, sample = parse_lines(GO_OUTPUT)
    assert (raw.name, raw.procs, raw.n) == ("BenchmarkRawUDP", 2, 470)
    assert raw.metrics == {"ns/op": 2577547, "B/op": 182403, "allocs/op": 600}
    assert sample.metrics["ns/op"] == 2524977.5


def test_rows_from_output_and_failure():
    run = gobench.GoRun(parse_lines(GO_OUTPUT), GO_OUTPUT, 0)
    base, seed = gobench.to_results(run, 100)
    assert (base.writer, seed.writer) == ("go-net-baseline", "go-seed-goroutines")
    assert base.samples[0].delivered == 470 * 100 and base.samples[0].allocs_per_op == 600
    assert base.samples[0].ns_per_op == pytest.approx(2577547)
    failed = gobench.GoRun([], "--- FAIL: BenchmarkRawUDP\n    seed_test.go:150: timeout, should not happen\n", 1)
    rows = gobench.to_results(failed, 100)
    assert all(r.error and not r.samples for r in rows)
    assert "FAIL" in rows[0].error


@pytest.mark.netns
@pytest.mark.parametrize("kind", ["lo", "veth"])
def test_seed_runs_in_the_sandbox(binary, kind):
    with Sandbox(kind) as topo:
        run = gobench.run(binary, topo, 10, 20000, parse_benchtime("20x"))
    assert run.returncode == 0, run.output
    rows = gobench.to_results(run, 10)
    for row in rows:
        assert row.error is None, row.error
        (only,) = row.samples
        assert only.ops == 20 and only.delivered == 200
        assert only.ns_per_op > 0 and only.allocs_per_op > 0 and only.bytes_per_op >= 10 * 1500


@pytest.mark.netns
def test_compare_with_go_puts_seed_rows_beside_writers(tmp_path):
    path = tmp_path / "go.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rawpacer.cli",
            "compare",
            "--writers",
            "udp-sendto",
            "--readers",
            "10",
            "--benchtime",
            "10x",
            "--with-go",
            "--json",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "go-net-baseline" in done.stdout and "go-seed-goroutines" in done.stdout
    rows = {r["writer"]: r for r in json.loads(path.read_text())["results"]}
    assert rows["go-net-baseline"]["source"] == "go" and rows["go-net-baseline"]["delivered"] == 100
    assert rows["go-net-baseline"]["speedup_vs_go_baseline"] == 1.0
    assert rows["udp-sendto"]["speedup_vs_go_baseline"] > 0
