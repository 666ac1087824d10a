"""The benchmark scripts and the notebooks use rawpacer as a user would: public names only (no module
or name with a leading ``_``) and no ``sys.path`` changes (issue 24: the top-level scripts use public
APIs only)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from helpers import ROOT

SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def notebook_code(path: Path) -> str:
    """A notebook's code cells as one module; IPython's ``%magic`` and ``!shell`` lines left out."""
    cells = json.loads(path.read_text())["cells"]
    lines = [
        line
        for cell in cells
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if not line.lstrip().startswith(("%", "!"))
    ]
    return "\n".join(lines)


def private(dotted: str) -> bool:
    """A dotted name with a part that starts with ``_`` (``__future__`` aside)."""
    return dotted != "__future__" and any(part.startswith("_") for part in dotted.split("."))


def problems(source: str) -> list[str]:
    """Every import of a private rawpacer module or name, and every change to ``sys.path``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.startswith("rawpacer") and private(a.name)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rawpacer"):
            module = node.module or ""
            names = [a.name for a in node.names if private(module) or a.name.startswith("_")]
            found += [f"from {module} import {name}" for name in names]
        elif isinstance(node, ast.Attribute) and ast.unparse(node) in ("sys.path", "site.addsitedir"):
            found.append(f"{ast.unparse(node)} at line {node.lineno}")
    return found


def test_the_check_finds_what_it_looks_for():
    source = (
        "import sys\nimport rawpacer._pace\nfrom rawpacer.writers._raw import RawWriter\n"
        "from rawpacer.headers import _KEPT\nfrom rawpacer.headers import FrameTemplate\nimport os._x\n"
        "sys.path.insert(0, 'bench')\nfrom __future__ import annotations\n"
    )
    assert problems(source) == [
        "import rawpacer._pace",
        "from rawpacer.writers._raw import RawWriter",
        "from rawpacer.headers import _KEPT",
        "sys.path at line 7",
    ]


def test_there_is_something_to_check():
    assert len(SCRIPTS) >= 9 and len(NOTEBOOKS) >= 7
    assert not (ROOT / "bench").exists()  # one name per idea: rawpacer/bench is the package's


@pytest.mark.parametrize("path", SCRIPTS + NOTEBOOKS, ids=lambda p: p.name)
def test_uses_public_names_only(path: Path):
    source = notebook_code(path) if path.suffix == ".ipynb" else path.read_text()
    assert problems(source) == []
