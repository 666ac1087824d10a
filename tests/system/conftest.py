"""Everything under tests/system sends real packets in namespaces rawpacer creates, or runs rawpacer
as a user would: it needs root. The ``netns`` marker is applied here, once, so
``pytest -m "not netns"`` runs the unprivileged part (tests/unit) alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``netns``; without root they cannot run, and say why."""
    needs_root = pytest.mark.skip(reason="needs root (namespaces, raw sockets): run `sudo ./sudo-run.sh test`")
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.netns)
            if os.geteuid() != 0:
                item.add_marker(needs_root)
