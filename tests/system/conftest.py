"""Everything under tests/system sends real packets in namespaces rawpacer creates, or runs rawpacer
as a user would: it needs root. The ``netns`` marker is applied here, once, so
``pytest -m "not netns"`` runs the unprivileged part (tests/unit) alone."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rawpacer.sandbox import Sandbox

HERE = Path(__file__).resolve().parent

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    # A shell that starts a job in the background without job control ignores SIGINT for it, and
    # every process it starts inherits that: Python never turns SIGINT into KeyboardInterrupt there,
    # so the tests that interrupt a run would test nothing. A handler (unlike SIG_IGN) is reset to
    # the default on exec, so the runs these tests start get Ctrl-C as a user's terminal gives it.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``netns``; without root they cannot run, and say why."""
    needs_root = pytest.mark.skip(reason="needs root (namespaces, raw sockets): run `sudo ./sudo-run.sh test`")
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.netns)
            if os.geteuid() != 0:
                item.add_marker(needs_root)


@pytest.fixture(scope="module")
def veth():
    """One veth sandbox (writer and reader namespaces) shared by a module's tests, removed after its last."""
    with Sandbox("veth") as topo:
        yield topo
