"""The layers of docs/architecture.md hold: no module imports a layer above its own, siblings in a
layer stay independent, and no writer imports another writer. The table is read from the doc
itself (its ```layers block), so the doc and the code cannot drift apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "rawpacer"
WRITERS = "rawpacer.writers"


def layer_table() -> list[list[str]]:
    """The ```layers block of docs/architecture.md: one layer a line, top first, siblings split by |."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = doc.split("```layers\n", 1)[1].split("```", 1)[0]
    return [[part.strip() for part in line.split("|")] for line in block.strip().splitlines()]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a ``from`` import names, relative ones (``from . import x``, ``from ..y import z``)
    resolved against ``module``, as the import system does (the language reference, "The import statement")."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(path: Path, module: str | None = None) -> set[str]:
    """Every rawpacer module ``path`` (module ``module``, by default its name in the checkout) imports,
    relative imports resolved (``from x import y`` counts x and x.y)."""
    module = module or module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = absolute(node, module, path.name == "__init__.py")
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("rawpacer.")}


def owner(module: str, table: list[list[str]]) -> tuple[int, str] | None:
    """(layer index from the top, the sibling entry) that ``module`` belongs to, if any."""
    for index, siblings in enumerate(table):
        for entry in siblings:
            if module == entry or module.startswith(entry + "."):
                return index, entry
    return None


def modules() -> dict[str, Path]:
    found = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    found.pop("rawpacer")  # the package's own __init__ re-exports the public API
    return found


def test_every_module_has_a_layer():
    table = layer_table()
    assert [m for m in modules() if owner(m, table) is None] == []


def test_no_module_imports_a_layer_above_or_a_sibling():
    table = layer_table()
    wrong = []
    for module, path in modules().items():
        mine = owner(module, table)
        assert mine is not None
        for target in imports(path):
            theirs = owner(target, table)
            if theirs is None or theirs[1] == mine[1]:
                continue  # a C extension (rawpacer._x), or within its own package
            if theirs[0] <= mine[0]:
                wrong.append(f"{module} imports {target} ({'sibling' if theirs[0] == mine[0] else 'layer above'})")
    assert wrong == []


def test_no_writer_imports_another_writer():
    writer_modules = {m for m in modules() if m.startswith(WRITERS + ".") and not m.split(".")[-1].startswith("_")}
    writer_modules.discard(f"{WRITERS}.base")
    wrong = [
        f"{module} imports {target}"
        for module in writer_modules
        for target in imports(modules()[module])
        if any(target == other or target.startswith(other + ".") for other in writer_modules - {module})
    ]
    assert wrong == []


def test_the_check_catches_an_upward_import(tmp_path):
    """The checker itself can fail: a headers module importing the CLI is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from rawpacer.cli import main\nimport rawpacer.writers.base\n")
    table = layer_table()
    assert imports(bad, "rawpacer.headers.bad") == {"rawpacer.cli", "rawpacer.cli.main", "rawpacer.writers.base"}
    headers = owner("rawpacer.headers.bad", table)
    cli = owner("rawpacer.cli", table)
    assert headers is not None and cli is not None and cli[0] < headers[0]


@pytest.mark.parametrize(
    ("file", "module", "source", "absolute"),
    [
        (
            "bad.py",
            "rawpacer.headers.bad",
            "from ..cli import main\nfrom . import fit\nfrom .fit import fit_payload\n",
            {
                "rawpacer.cli",
                "rawpacer.cli.main",
                "rawpacer.headers",
                "rawpacer.headers.fit",
                "rawpacer.headers.fit.fit_payload",
            },
        ),
        (
            "__init__.py",
            "rawpacer.headers",
            "from .build import build_frame\nfrom .. import errors\n",
            {"rawpacer.headers.build", "rawpacer.headers.build.build_frame", "rawpacer.errors"},
        ),
    ],
)
def test_relative_imports_are_resolved_and_checked(tmp_path, file, module, source, absolute):
    """``from . import x`` and ``from ..y import z`` count as the absolute modules they name (in a
    package's __init__, ``.`` is the package itself)."""
    path = tmp_path / file
    path.write_text(source)
    assert imports(path, module) == absolute
