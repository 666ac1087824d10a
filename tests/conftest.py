"""Suite-wide guards: root is required for the network tests, and nothing may be left behind."""

from __future__ import annotations

import os

import pytest
from helpers import child_pids

from rawpacer.sandbox import pid_namespaces

HOST_SYSCTL_DIRS = ("/proc/sys/net/ipv4/conf", "/proc/sys/net/ipv6/conf", "/proc/sys/net/core")


def host_sysctls() -> dict[str, str]:
    """Every readable network sysctl of the host namespace (the suite must change none)."""
    values = {}
    for top in HOST_SYSCTL_DIRS:
        for folder, _, files in os.walk(top):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    with open(path) as handle:
                        values[path] = handle.read()
                except OSError:
                    continue
    return values


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._rawpacer_host_sysctls = host_sysctls()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any namespace, host veth, child process or host sysctl change survived it."""
    problems = []
    changed = sorted(k for k, v in host_sysctls().items() if session.config._rawpacer_host_sysctls.get(k, v) != v)
    if changed:
        problems.append(f"host sysctls changed: {', '.join(changed[:5])}")
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
    """Every test removes the namespaces it created and ends in the namespace it started in."""
    before = set(pid_namespaces())
    home = os.readlink("/proc/thread-self/ns/net")
    yield
    leaked = set(pid_namespaces()) - before
    assert not leaked, f"test left namespaces behind: {sorted(leaked)}"
    assert os.readlink("/proc/thread-self/ns/net") == home, "test left the thread in another network namespace"
