"""Every notebook in notebooks/ runs top to bottom, headless, and leaves no namespace behind."""

from __future__ import annotations

import os

import nbformat
import pytest
from helpers import ROOT
from nbclient import NotebookClient

from rawpacer.sandbox import owned
from rawpacer.sandbox.netns import PREFIX, _alive

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_error(path, tmp_path):
    before = set(owned())
    notebook = nbformat.read(path, as_version=4)
    os.environ.setdefault("MPLBACKEND", "Agg")
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,  # run every cell, then name every error below (not only the first)
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        f"{o['ename']}: {o['evalue']}"
        for cell in notebook.cells
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == [], f"{path.name} raised in its cells"
    # the kernel has exited: any new namespace whose creator is gone was left behind
    left = [n for n in set(owned()) - before if not _alive(int(n[len(PREFIX) :].split("-")[0]))]
    assert not left, f"the notebook left namespaces behind: {left}"


def test_the_notebooks_are_saved_without_stale_outputs():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01-", "02-", "03-", "04-", "05-", "06-", "07-"]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        assert notebook.cells[0].cell_type == "markdown", f"{path.name} must open with what it shows and why"
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert not cell.get("outputs"), f"{path.name} is saved with outputs"
