"""Why frames left but readers got nothing, from the kernel's own counters in the reader namespace.

``counters`` reads them (``snapshot``, ``snapshot_of``) and says what moved (``delta``); ``rules``
is the table that turns what moved into sentences naming the cause (pure, tested on synthetic
counters). ``explain(before, after)`` does both; ``explain(before, after, lost)`` also says how many
of ``lost`` datagrams no counter accounts for. In the router topology the device under test's
counters are read and explained too (rawpacer.dut.counters).
"""

from __future__ import annotations

from rawpacer.diagnose.counters import Counters, delta, snapshot, snapshot_of
from rawpacer.diagnose.rules import RULES, Evidence, Rule, attributed, explain_evidence, findings

__all__ = [
    "RULES",
    "Counters",
    "Evidence",
    "Rule",
    "attributed",
    "delta",
    "evidence",
    "explain",
    "findings",
    "snapshot",
    "snapshot_of",
]


def evidence(before: Counters, after: Counters) -> Evidence:
    """What moved between two snapshots, with the raw-path sysctls that are off in the later one."""
    off = tuple(key for key, value in after.sysctls.items() if value == "0")
    return Evidence(delta(before, after), off)


def explain(before: Counters, after: Counters, lost: int | None = None) -> str:
    """Why datagrams were lost between ``before`` and ``after``: one line naming every cause seen, and,
    given how many were ``lost``, how many of them no counter accounts for."""
    return explain_evidence(evidence(before, after), lost)
