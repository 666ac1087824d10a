"""The Python API ``import rawpacer`` offers: compare() and rfc2544() with the options of the checks
behind them (``takes``), kept in step with the CLI; send() passing the DUT and ports on, the writers' knobs, rfc2544 left a
function by the suite's modules, and imports made only when a name is first used."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import subprocess
import sys
from typing import get_type_hints

import pytest
from helpers import ROOT

import rawpacer
import rawpacer.bench.rfc2544_suite
from rawpacer.bench.config import PathOptions, make_config
from rawpacer.bench.rfc2544_live import make_rfc2544_config
from rawpacer.bench.rfc2544_suite import make_settings
from rawpacer.cli.rfc2544 import METHODOLOGY_OPTIONS
from rawpacer.errors import UsageError
from rawpacer.writers import base as registry

DERIVED = {"ipv6", "mtu"}
"""make_settings parameters that make_rfc2544_config fills from the run's own options."""


def parameters(function) -> list[tuple[str, object, object]]:
    """(name, default, annotation) of each named parameter; **kwargs left out."""
    found = inspect.signature(function).parameters.values()
    return [(p.name, p.default, p.annotation) for p in found if p.kind is not p.VAR_KEYWORD]


def test_compare_takes_make_configs_options_keyword_only():
    assert parameters(rawpacer.compare) == parameters(make_config)
    kinds = {p.kind for p in inspect.signature(rawpacer.compare).parameters.values()}
    assert kinds == {inspect.Parameter.KEYWORD_ONLY}


def test_rfc2544_takes_the_run_and_methodology_options():
    assert parameters(rawpacer.rfc2544) == parameters(make_rfc2544_config)
    path = inspect.signature(rawpacer.rfc2544).parameters["path"]
    assert path.kind is path.VAR_KEYWORD and "PathOptions" in str(path.annotation)  # the DUT and ports, as compare's
    checked, defaults = get_type_hints(make_config), {p[0]: p[1] for p in parameters(make_config)}
    assert all(checked[name] == hint and defaults[name] is None for name, hint in get_type_hints(PathOptions).items())
    got = [p[:2] for p in parameters(rawpacer.rfc2544)]
    methodology = [p[:2] for p in parameters(make_settings) if p[0] not in DERIVED]
    start = got.index(methodology[0])
    # names and defaults, in make_settings' order (make_rfc2544_config passes them on by position)
    assert got[start:] == [*methodology, ("json", None)]
    assert [p[0] for p in methodology] == list(METHODOLOGY_OPTIONS)  # the CLI's options, in its order


def test_send_passes_the_dut_and_ports_on_to_make_config():
    path = inspect.signature(rawpacer.send).parameters["path"]
    assert path.kind is path.VAR_KEYWORD and "PathOptions" in str(path.annotation)
    with pytest.raises(UsageError, match="egress"):
        rawpacer.send(b"x", rate=1, egress_mtu=10)


def test_bad_options_are_refused_before_anything_runs():
    with pytest.raises(UsageError, match="readers 0 is out of range"):
        rawpacer.compare(readers=0)
    with pytest.raises(UsageError, match="trial '0s'"):
        rawpacer.rfc2544(trial="0s")
    with pytest.raises(TypeError, match="writerz"):
        rawpacer.compare(writerz="udp-sendto")


def test_every_writers_knobs_class_is_exported():
    knobs = {registry.get(name).knobs_type for name in registry.names()}
    exported = {getattr(rawpacer, name) for name in rawpacer.__all__}
    assert knobs <= exported and rawpacer.Knobs in knobs
    assert rawpacer.XdpKnobs(tx_ring=64).tx_ring == 64
    with pytest.raises(UsageError, match="threads -1 is not allowed"):
        rawpacer.PoolKnobs(threads=-1)


def test_every_public_name_resolves_and_is_listed():
    assert set(rawpacer.__all__) == {"__version__", *rawpacer._HOMES}
    assert all(getattr(rawpacer, name) is not None for name in rawpacer.__all__)
    assert set(rawpacer.__all__) <= set(dir(rawpacer))
    assert all(hasattr(getattr(rawpacer, name), "to_dict") for name in ("Report", "WriterResult", "Run"))
    with pytest.raises(AttributeError, match="has no attribute 'comparee'"):
        _ = rawpacer.comparee


def test_rfc2544_stays_a_function_once_the_suite_is_imported():
    # A submodule import binds its name on the parent package (the language reference, "The import
    # system", 5.4.2), so a package named rfc2544 would replace rawpacer.bench.rfc2544 (and the lazy
    # rawpacer.rfc2544) with itself: the suite lives in rfc2544_suite for that reason.
    suite = rawpacer.bench.rfc2544_suite
    names = [info.name for info in pkgutil.walk_packages(suite.__path__, f"{suite.__name__}.")]
    for name in [*names, "rawpacer.bench.rfc2544_live"]:
        importlib.import_module(name)
    assert {"rawpacer.bench.rfc2544_suite.search", "rawpacer.bench.rfc2544_suite.mlr"} <= set(names)
    assert inspect.isfunction(rawpacer.bench.rfc2544) and inspect.isfunction(rawpacer.rfc2544)
    assert rawpacer.rfc2544 is rawpacer.bench.rfc2544
    assert all(importlib.util.find_spec(name) is None for name in ("rawpacer.bench.rfc2544", "rawpacer.rfc2544"))


def loaded_after(statement: str, packages: tuple[str, ...] = ("rawpacer", "numpy")) -> set[str]:
    """The modules of ``packages`` that a fresh interpreter holds after ``statement``."""
    code = f"{statement}; import sys; print(*(m for m in sys.modules if m.split('.')[0] in {packages!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split())


def test_import_rawpacer_loads_nothing_until_a_name_is_used():
    assert loaded_after("import rawpacer") == {"rawpacer"}
    headers = loaded_after("import rawpacer.headers")
    assert "numpy" not in headers and not any(m.startswith("rawpacer.bench") for m in headers)
    assert {"rawpacer.bench", "numpy"} <= loaded_after("import rawpacer; rawpacer.compare")


def test_the_cli_imports_mlrsearch_only_when_a_search_runs():
    # Importing the package costs 0.1-0.6 s (its dataclass properties walk the importer's stack):
    # every command, --help included, paid it when rfc2544_suite.mlr imported it at the top.
    assert loaded_after("from rawpacer.cli import build_parser; build_parser()", ("MLRsearch",)) == set()


@pytest.mark.timeout(300)
def test_mypy_sees_the_keyword_parameters_and_the_result_types(tmp_path):
    user = tmp_path / "user.py"
    user.write_text("import rawpacer\nrawpacer.compare(writerz='x')\nn: int = rawpacer.rfc2544(sizes='64')\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(user)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert 'Unexpected keyword argument "writerz" for "compare"' in done.stdout, done.stdout
    assert 'expression has type "Run", variable has type "int"' in done.stdout, done.stdout
