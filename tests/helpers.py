"""What several test modules share: the checkout's root and ways to run rawpacer as a user would."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The checkout: README.md, docs/, notebooks/ and the package live here."""


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
