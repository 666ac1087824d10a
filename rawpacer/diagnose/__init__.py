"""Why frames left but readers got nothing, from the kernel's own counters in the reader namespace.

``counters`` reads them (``snapshot``, ``snapshot_of``) and says what moved (``delta``); ``rules``
is the table that turns what moved into sentences naming the cause (pure, tested on synthetic
counters). ``explain(before, after)`` does both; ``explain(before, after, lost)`` also says how many
of ``lost`` datagrams no counter accounts for. In the router topology the device under test's
counters are read and explained too (rawpacer.dut.counters).
"""

from __future__ import annotations

from rawpacer.diagnose.counters import Counters, delta, snapshot, snapshot_of
from rawpacer.diagnose.rules import RULES, Evidence, Rule, attributed, dut_dropped, explain_evidence, findings
from rawpacer.dut.counters import counts

__all__ = [
    "RULES",
    "Counters",
    "Evidence",
    "Rule",
    "attributed",
    "delta",
    "dut_dropped",
    "dut_dropped_between",
    "dut_moved",
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


def dut_dropped_between(before: Counters, after: Counters) -> int:
    """Datagrams the device under test's own counters say it dropped between two snapshots."""
    return dut_dropped(evidence(before, after))


def dut_moved(before: Counters, after: Counters) -> dict[str, int]:
    """The device under test's counters that moved (gauges left out); empty without a DUT."""
    return counts(before.dut, after.dut)
