"""Where a result was measured: the machine line every report prints (``describe``), and the whole
environment a result's JSON carries (``environment``): rawpacer's version and commit, the command
line, the kernel, the CPUs, and the clock and timer settings a timing figure depends on.

Every field is read, never inferred: a fact this machine does not show is None
(docs/trusting-a-figure.md says what each one means).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

CLOCKSOURCE = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")
"""The clock behind CLOCK_MONOTONIC (Documentation/timers/timekeeping.rst): tsc is read in user space,
kvm-clock or hpet may cost a system call or a VM exit per read."""

CPUFREQ = Path("/sys/devices/system/cpu")
"""Where each CPU's frequency governor shows, as cpuN/cpufreq/scaling_governor (Documentation/admin-guide/pm/cpufreq.rst)."""

PR_GET_TIMERSLACK = 30
"""prctl(2) option: the thread's timer slack in ns, by which the kernel may delay a sleeper's wake-up."""

GIT_TIMEOUT_S = 5.0


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` otherwise)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cores() -> int:
    """CPUs this process may run on (what GOMAXPROCS defaults to)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def describe() -> dict[str, object]:
    """The machine facts a result needs to be compared with another run's (the report's first line)."""
    return {
        "cpu": cpu_model(),
        "cores": cores(),
        "kernel": platform.release(),
        "os": platform.system(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }


def version() -> str | None:
    """rawpacer's installed version (None when it runs from a checkout that was never installed)."""
    try:
        return importlib.metadata.version("rawpacer")
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(checkout: Path, *args: str) -> str | None:
    """``git ARGS`` in ``checkout``: its output, or None when git is absent or says no."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=checkout, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit(checkout: Path | None = None) -> tuple[str | None, bool | None]:
    """The commit rawpacer runs from and whether tracked files changed since, when the package's parent
    directory is the top of a git work tree (a clone); (None, None) otherwise or without git."""
    top = checkout or Path(__file__).resolve().parents[2]
    found = _git(top, "rev-parse", "--show-toplevel")
    if found is None or Path(found).resolve() != top.resolve():
        return None, None
    commit = _git(top, "rev-parse", "HEAD")
    changes = _git(top, "status", "--porcelain", "--untracked-files=no")
    return commit, None if changes is None else bool(changes)


def read_text(path: Path) -> str | None:
    """A /proc or /sys file's text, stripped; None when this machine does not have it."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def timer_slack_ns() -> int | None:
    """This thread's timer slack (prctl PR_GET_TIMERSLACK, ns; 50,000 by default, prctl(2)), None if refused."""
    libc = ctypes.CDLL(None, use_errno=True)
    slack = int(libc.prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0))
    return None if slack < 0 else slack


def governor(root: Path = CPUFREQ) -> str | None:
    """The CPU frequency governors /sys shows, distinct ones joined by ``/``; None when there is no
    cpufreq (a VM: the hypervisor sets the frequency)."""
    found = (read_text(p) for p in sorted(root.glob("cpu[0-9]*/cpufreq/scaling_governor")))
    names = list(dict.fromkeys(g for g in found if g))
    return "/".join(names) or None


def affinity() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def timing_line() -> str:
    """``doctor``'s line on what a timing figure here rests on: clocksource, timer slack, governor."""
    slack = timer_slack_ns()
    found = governor()
    return (
        f"host timing: clocksource {read_text(CLOCKSOURCE) or 'unknown'}, "
        f"timer slack {'unknown' if slack is None else f'{slack / 1e3:g} µs'}, "
        f"CPU governor {found or 'none shown (no cpufreq: on a VM the hypervisor sets the frequency)'}"
    )


def environment(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Everything a result's reader needs to judge where it came from (``argv``: sys.argv by default)."""
    commit, dirty = git_commit()
    uname = os.uname()
    return {
        "rawpacer_version": version(),
        "git_commit": commit,
        "git_dirty": dirty,
        "command": list(sys.argv if argv is None else argv),
        "python": sys.version.split()[0],
        "kernel_release": uname.release,
        "kernel_version": uname.version,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity(),
        "clocksource": read_text(CLOCKSOURCE),
        "timer_slack_ns": timer_slack_ns(),
        "cpu_governor": governor(),
    }
