"""The reader process is a fresh interpreter per reader set (``rawpacer.readers.spawn``): what it
imports is its start-up time, so it must load only what it runs. numpy alone took ~0.2 s of the
~0.35 s it once needed, pyroute2 ~0.1 s more (``python -X importtime``)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import rawpacer.readers
from rawpacer import lazy

HEAVY = ("numpy", "pyroute2", "rich", "psutil", "scapy", "dpkt")
"""Packages the reader process never needs: each costs tens of ms or more to import."""


def loaded_by(code: str) -> list[str]:
    """The heavy top-level packages a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [name for name in done.stdout.split() if name in HEAVY]


@pytest.mark.parametrize(
    "entry",
    ["rawpacer.readers.process", "rawpacer.readers.spawn"],
)
def test_the_reader_process_imports_nothing_heavy(entry):
    assert loaded_by(f"import {entry}") == []


def test_the_public_names_still_import_on_first_use():
    assert loaded_by("from rawpacer.readers import ReaderSet, OpResult, Counts") != []  # the parent's side does
    assert rawpacer.readers.ReaderSet.__name__ == "ReaderSet"
    assert rawpacer.readers.arrivals.__name__ == "rawpacer.readers.arrivals"  # a submodule by attribute too


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        lazy.attribute("rawpacer.readers", {}, "nothing_here")


@pytest.mark.parametrize("package", ["rawpacer.headers", "rawpacer.pacing", "rawpacer.readers", "rawpacer.sandbox"])
def test_every_lazy_name_is_listed_once_and_resolves_from_its_home(package):
    module = importlib.import_module(package)
    assert module.__all__ == list(module._HOMES)
    for name, home in module._HOMES.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name), name
