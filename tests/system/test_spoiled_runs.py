"""The host in every result, on purpose: a real ``compare`` run beside two CPU hogs (one pinned to each
CPU, started and killed here) must say its pass was spoiled, in the JSON and in one table line, with
figures that agree with what this test reads from /proc itself around the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import cli

from rawpacer.host import CpuTimes, parse_pid_stat, parse_stat

HOG = "while True: pass"


def read_proc() -> tuple[CpuTimes, int]:
    with open("/proc/stat") as handle:
        return parse_stat(handle.read())


def ours() -> float:
    """CPU ticks of this process and its waited-for children: the rawpacer run and its reader process
    (which it waited for); not the hogs, still running when this is read."""
    times = os.times()
    return (times.user + times.system + times.children_user + times.children_system) * os.sysconf("SC_CLK_TCK")


def hog_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return parse_pid_stat(handle.read())


@dataclass
class HoggedRun:
    """A compare run beside the hogs, and what this test measured around it."""

    done: subprocess.CompletedProcess[str]
    data: dict[str, Any]
    steal_pct: float
    others_pct: float


@pytest.fixture(scope="module")
def hogged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HoggedRun]:
    path: Path = tmp_path_factory.mktemp("host") / "hogged.json"
    cpus = sorted(os.sched_getaffinity(0))
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(2)]
    try:
        for index, hog in enumerate(hogs):
            os.sched_setaffinity(hog.pid, {cpus[index % len(cpus)]})
        (before, count), mine_before = read_proc(), ours()
        done = cli("compare", "--writers", "udp-sendto", "--benchtime", "50x", "--json", str(path), timeout=180)
        (after, _), mine_after = read_proc(), ours()
        hogs_running = sum(hog_ticks(h.pid) for h in hogs)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    delta = after.minus(before)
    assert done.returncode == 0, done.stderr
    assert hogs_running > 0
    yield HoggedRun(
        done,
        json.loads(path.read_text()),
        steal_pct=delta.steal * 100 / delta.total,
        others_pct=(delta.processes - (mine_after - mine_before)) * 100 / (delta.total / count),
    )


def test_a_pass_beside_cpu_hogs_is_flagged_spoiled_in_the_json_and_the_table(hogged: HoggedRun) -> None:
    (row,) = hogged.data["results"]
    (sample,) = row["samples"]
    assert sample["host"]["spoiled"] is True and "other processes" in sample["host"]["why"]
    environment = hogged.data["environment"]
    assert "compare" in environment["command"] and environment["cpu_count"] == os.cpu_count()
    warnings = [line for line in hogged.done.stdout.splitlines() if "figures may be the host's" in line]
    assert len(warnings) == 1 and "passes of udp-sendto" in warnings[0] and "other processes" in warnings[0]


def test_the_reported_steal_and_others_agree_with_proc_read_around_the_run(hogged: HoggedRun) -> None:
    """Loose: the pass is a part of the run (measured here: 181 % vs the pass's 183 %, 181 % vs 180 %)."""
    figures = hogged.data["results"][0]["samples"][0]["host"]
    assert figures["others_pct"] > 50 and hogged.others_pct > 50, (figures, hogged.others_pct)
    assert abs(figures["others_pct"] - hogged.others_pct) < 50, (figures, hogged.others_pct)
    assert abs(figures["steal_pct"] - hogged.steal_pct) < 10, (figures, hogged.steal_pct)
    assert figures["own_pct"] is not None and figures["own_pct"] > 0
