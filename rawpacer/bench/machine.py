"""Where a benchmark ran: CPU model, cores, kernel and Python, for the report and JSON."""

from __future__ import annotations

import os
import platform
import sys


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
    """The machine facts a result needs to be compared with another run's."""
    return {
        "cpu": cpu_model(),
        "cores": cores(),
        "kernel": platform.release(),
        "os": platform.system(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }
