"""The Go port of the seed: builds offline, runs in a sandbox, and its lines parse into rows."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import cli

from rawpacer.bench import gobench
from rawpacer.bench.calibrate import parse_benchtime
from rawpacer.sandbox import Sandbox

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go is not on PATH (apt-get install golang-go)")


@pytest.fixture(scope="module")
def binary():
    return gobench.build()


@pytest.mark.parametrize("kind", ["lo", "veth"])
def test_seed_runs_in_the_sandbox(binary, kind):
    with Sandbox(kind) as topo:
        run = gobench.run(binary, topo, 10, 20000, parse_benchtime("20x"))
    assert run.returncode == 0, run.output
    rows = gobench.to_results(run, 10)
    for row in rows:
        assert row.error is None, row.error
        (only,) = row.samples
        assert only.ops == 20 and only.counts.delivered == 200
        assert only.ns_per_op > 0 and only.allocs_per_op > 0 and only.bytes_per_op >= 10 * 1500


def test_compare_with_go_puts_seed_rows_beside_writers(tmp_path):
    path = tmp_path / "go.json"
    done = cli(
        "compare", "--writers", "udp-sendto", "--readers", "10", "--benchtime", "10x", "--with-go", "--json", str(path)
    )
    assert done.returncode == 0, done.stderr
    assert "go-net-baseline" in done.stdout and "go-seed-goroutines" in done.stdout
    rows = {r["writer"]: r for r in json.loads(path.read_text())["results"]}
    assert rows["go-net-baseline"]["source"] == "go" and rows["go-net-baseline"]["delivered"] == 100
    assert rows["go-net-baseline"]["speedup_vs_go_baseline"] == 1.0
    assert rows["udp-sendto"]["speedup_vs_go_baseline"] > 0
