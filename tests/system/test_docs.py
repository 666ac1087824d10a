"""The examples in docs/ are run as doctests, so the documented API is the API that works."""

from __future__ import annotations

import doctest

import pytest
from helpers import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_doc_examples_run(page):
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0, f"{result.failed} example(s) failed in {page.name}"


def test_readme_header_example_runs_as_written():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) == 5
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - running the README's example is the test
    assert namespace["parsed"].dport == 5001 and namespace["parsed"].udp_checksum_ok
