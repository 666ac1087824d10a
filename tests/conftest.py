"""Suite-wide guards: root is required for the network tests, and nothing may be left behind."""

from __future__ import annotations

import os

import pytest

from rawpacer.sandbox import pid_namespaces


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any namespace, host veth or child process of the suite survived it."""
    problems = []
    left = pid_namespaces(os.getpid())
    if left:
        problems.append(f"namespaces left behind: {', '.join(left)}")
    veths = [name for name in os.listdir("/sys/class/net") if name.startswith(("rpw", "rpr"))]
    if veths:
        problems.append(f"veth interfaces in the host namespace: {', '.join(veths)}")
    children = child_pids()
    if children:
        problems.append(f"child processes still running: {sorted(children)}")
    if problems:
        session.exitstatus = 1
        print("\nrawpacer: the suite did not clean up: " + "; ".join(problems))


@pytest.fixture(autouse=True)
def _no_namespace_leak():
    """Every test removes the namespaces it created, pass or fail."""
    before = set(pid_namespaces())
    yield
    leaked = set(pid_namespaces()) - before
    assert not leaked, f"test left namespaces behind: {sorted(leaked)}"


def child_pids() -> set[int]:
    """PIDs of this process's live children (zombies excluded)."""
    path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    with open(path) as handle:
        pids = {int(p) for p in handle.read().split()}
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().split(") ", 1)[1][0] != "Z":
                    alive.add(pid)
        except FileNotFoundError:
            pass
    return alive
