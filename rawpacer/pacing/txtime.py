"""Kernel pacing where it exists: SO_TXTIME gives each packet a departure time, honoured by the fq
qdisc (``CONFIG_NET_SCH_FQ``) or the etf qdisc (``CONFIG_NET_SCH_ETF``, which can hand it to a
NIC's launch-time offload). Whether this kernel has them, for ``doctor``.
"""

from __future__ import annotations

import gzip
import os
import platform

QDISC_CONFIG = {"fq": "CONFIG_NET_SCH_FQ", "etf": "CONFIG_NET_SCH_ETF"}
"""The kernel config option that builds each pacing qdisc."""


def _config_text() -> str | None:
    """The running kernel's build config: /proc/config.gz, else /boot/config-<release>."""
    try:
        with gzip.open("/proc/config.gz", "rt") as handle:
            return handle.read()
    except OSError:
        pass
    try:
        with open(f"/boot/config-{platform.release()}") as handle:
            return handle.read()
    except OSError:
        return None


def _module_file(name: str, modules_dir: str) -> bool:
    folder = os.path.join(modules_dir, "kernel", "net", "sched")
    try:
        return any(entry.startswith(f"sch_{name}.ko") for entry in os.listdir(folder))
    except OSError:
        return False


def pacing_qdiscs(config: str | None = None, modules_dir: str | None = None) -> dict[str, str]:
    """``{"fq": state, "etf": state}``, each ``"built-in"``, ``"module"``, ``"absent"`` or ``"unknown"``.

    Read from the kernel config (``config``: its text, default the running kernel's); without one,
    from the modules directory (default /lib/modules/<release>). A module may still fail to load
    (e.g. booted with ``nomodule``); only adding the qdisc in a namespace proves it.
    """
    text = _config_text() if config is None else config
    modules = modules_dir or f"/lib/modules/{platform.release()}"
    states = {}
    for name, option in QDISC_CONFIG.items():
        if text is not None:
            lines = text.splitlines()
            if f"{option}=y" in lines:
                states[name] = "built-in"
            elif f"{option}=m" in lines:
                states[name] = "module"
            else:
                states[name] = "absent"
        elif _module_file(name, modules):
            states[name] = "module"
        else:
            states[name] = "unknown"
    return states
