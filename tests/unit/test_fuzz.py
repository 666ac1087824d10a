"""atheris (coverage-guided) over the parsers, seeded from the small corpus in tests/unit/corpus/parse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = 30000


def test_parsers_survive_coverage_guided_fuzzing(tmp_path):
    """A fixed number of inputs from a fixed seed, however slow the machine: bounded by runs, not time."""
    seeds = sorted((HERE / "corpus" / "parse").glob("*.bin"))
    names = {p.stem.split("-")[0] for p in seeds}
    assert {"ipv6", "vlan", "fragment"} <= names and len(seeds) >= 16
    assert sum(p.stat().st_size for p in seeds) < 64 * 1024
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "fuzz_parsers.py"),
            f"-runs={RUNS}",
            "-seed=1",
            str(tmp_path),
            str(HERE / "corpus" / "parse"),
        ],
        capture_output=True,
        text=True,
        timeout=280,  # only a guard against a hang, below pytest's own 300 s: the run count bounds the work
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    executed = re.search(r"Done (\d+) runs", done.stderr)
    assert executed and int(executed.group(1)) == RUNS, done.stderr[-1000:]
