"""The checks a maintainer expects, run as part of the README's test command on every clean clone:
ruff's lint and format rules and mypy (strict on rawpacer/), configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT

SOURCES = ["rawpacer", "tests", "benchmarks", "setup.py"]

CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", *SOURCES],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", *SOURCES],
    "mypy": [sys.executable, "-m", "mypy"],
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(CHECKS))
def test_code_passes(name: str) -> None:
    done = subprocess.run(CHECKS[name], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{name} found problems:\n{done.stdout}{done.stderr}"
