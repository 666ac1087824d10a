"""The Go seed's output parsed into result rows: pure, no Go toolchain and no root needed."""

from __future__ import annotations

import pytest

from rawpacer.bench import gobench
from rawpacer.bench.golines import parse_lines

GO_OUTPUT = """goos: linux
goarch: amd64
pkg: rawpacer/seedgo
cpu: AMD EPYC
BenchmarkRawUDP-2   	     470	   2577547 ns/op	  182403 B/op	     600 allocs/op
BenchmarkSample-2   	     506	   2524977.5 ns/op	  189121 B/op	     801 allocs/op
PASS
"""


def test_parse_go_output():
    raw, sample = parse_lines(GO_OUTPUT)
    assert (raw.name, raw.procs, raw.n) == ("BenchmarkRawUDP", 2, 470)
    assert raw.metrics == {"ns/op": 2577547, "B/op": 182403, "allocs/op": 600}
    assert sample.metrics["ns/op"] == 2524977.5


def test_rows_from_output_and_failure():
    run = gobench.GoRun(parse_lines(GO_OUTPUT), GO_OUTPUT, 0)
    base, seed = gobench.to_results(run, 100)
    assert (base.writer, seed.writer) == ("go-net-baseline", "go-seed-goroutines")
    assert base.samples[0].counts.delivered == 470 * 100 and base.samples[0].allocs_per_op == 600
    assert base.samples[0].ns_per_op == pytest.approx(2577547)
    failed = gobench.GoRun([], "--- FAIL: BenchmarkRawUDP\n    seed_test.go:150: timeout, should not happen\n", 1)
    rows = gobench.to_results(failed, 100)
    assert all(r.error and not r.samples for r in rows)
    assert "FAIL" in rows[0].error
