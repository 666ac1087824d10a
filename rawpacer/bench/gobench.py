"""The seed's Go benchmark side by side: build ``rawpacer/bench/seed_go`` offline and run it in the sandbox.

The Go port ships inside the package (package data), so an installed rawpacer finds it as a clone does."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rawpacer.bench.calibrate import Benchtime
from rawpacer.bench.golines import GoLine, parse_lines
from rawpacer.bench.result import Sample, WriterResult
from rawpacer.errors import RawpacerError, UsageError
from rawpacer.readers import Counts
from rawpacer.sandbox import Topology

ROWS = {"BenchmarkRawUDP": "go-net-baseline", "BenchmarkSample": "go-seed-goroutines"}
MESSAGE_SIZE = 1500
INSTALL_HINT = "install Go (e.g. `apt-get install golang-go`, which sudo-run.sh does) or drop --with-go"


def cache_dir() -> Path:
    """Where the Go seed is built (``$XDG_CACHE_HOME/rawpacer`` or ``~/.cache/rawpacer``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "rawpacer"
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_dir() -> Path:
    """Where the Go port lives: ``$RAWPACER_SEED_GO`` or the package's own ``seed_go`` folder."""
    override = os.environ.get("RAWPACER_SEED_GO")
    return Path(override) if override else Path(__file__).resolve().parent / "seed_go"


def require_go() -> str:
    """The ``go`` command on PATH; UsageError saying how to install it otherwise."""
    found = shutil.which("go")
    if not found:
        raise UsageError(f"--with-go needs the `go` command on PATH and none was found; {INSTALL_HINT}")
    if not (source_dir() / "go.mod").exists():
        raise UsageError(f"--with-go needs the Go seed sources at {source_dir()} and they are missing")
    return found


def go_env() -> dict[str, str]:
    """Offline, standard-library-only build environment with caches under rawpacer's cache dir."""
    root = cache_dir() / "go"
    return dict(
        os.environ,
        GOFLAGS="-mod=mod",
        GOPROXY="off",
        GOCACHE=str(root / "cache"),
        GOPATH=str(root / "path"),
        CGO_ENABLED="0",
        GOTOOLCHAIN="local",
    )


def build(go: str | None = None) -> Path:
    """``go test -c`` the seed port into the cache; the test binary's path."""
    go = go or require_go()
    binary = cache_dir() / "go" / "seed.test"
    binary.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [go, "test", "-c", "-o", str(binary), "."],
        cwd=source_dir(),
        env=go_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RawpacerError(f"building the Go seed in {source_dir()} failed: {tail[0]}")
    return binary


@dataclass(frozen=True)
class GoRun:
    """Parsed output of one run of the seed's benchmarks, plus the raw text."""

    lines: list[GoLine]
    output: str
    returncode: int


def run(
    binary: Path, topo: Topology, readers: int, port_base: int, benchtime: Benchtime, timeout: float = 600
) -> GoRun:
    """Run both seed benchmarks in the sandbox's writer namespace, readers in its reader namespace."""
    env = dict(
        os.environ,
        RAWPACER_GO_IP=topo.reader_ip,
        RAWPACER_GO_WRITER_IP=topo.writer_ip,
        RAWPACER_GO_READERS=str(readers),
        RAWPACER_GO_PORT_BASE=str(port_base),
        RAWPACER_GO_READER_NS=f"/run/netns/{topo.reader_ns}",
    )
    command = [
        "ip",
        "netns",
        "exec",
        topo.writer_ns,
        str(binary),
        "-test.run",
        "^$",
        "-test.bench",
        ".",
        "-test.benchmem",
        "-test.benchtime",
        benchtime.go_flag(),
        "-test.count",
        "1",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    output = done.stdout + done.stderr
    return GoRun(parse_lines(output), output, done.returncode)


def to_results(go_run: GoRun, readers: int) -> list[WriterResult]:
    """One WriterResult per seed benchmark; an error row if a benchmark failed or printed nothing."""
    by_name = {line.name: line for line in go_run.lines}
    results = []
    for bench_name, writer in ROWS.items():
        result = WriterResult(
            writer,
            readers,
            MESSAGE_SIZE,
            MESSAGE_SIZE,
            source="go",
            notes=["Go seed: 1500-byte crypto/rand messages; datagrams counted, content not checked"],
        )
        line = by_name.get(bench_name)
        if line is None:
            failure = [t for t in go_run.output.splitlines() if "FAIL" in t or "timeout" in t or "rror" in t]
            result.error = (failure[0].strip() if failure else f"no result line (exit {go_run.returncode})")[:200]
        else:
            result.samples.append(sample_from_line(line, readers))
        results.append(result)
    return results


def sample_from_line(line: GoLine, readers: int) -> Sample:
    """A Go line as a Sample: a passing seed benchmark got all ``readers`` datagrams every op."""
    ns = line.metrics["ns/op"]
    delivered = line.n * readers
    return Sample(
        ops=line.n,
        elapsed_ns=round(ns * line.n),
        sent=delivered,
        counts=Counts(delivered=delivered),
        checked=False,
        payload_bytes=delivered * MESSAGE_SIZE,
        bytes_per_op=line.metrics.get("B/op"),
        allocs_per_op=line.metrics.get("allocs/op"),
        alloc_method="go-benchmem",
    )
