"""Pacing: streams that leave at a chosen rate, and the figures that say how well they did.

``rate`` parses --rate/--burst/--pattern/--seed into a ``PaceSpec``; ``schedule`` says when each
departure is due; ``pacer`` holds a loop to it (``Pacer.wait``), or lends its C core to the transmit
engine's loop (``Pacer.loop_core``); ``stats`` turns kernel receive timestamps into the JSON figures; ``txtime``
says whether the kernel could pace instead (fq/etf); ``rxstamp`` reads receive timestamps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawpacer import lazy

if TYPE_CHECKING:
    from rawpacer.pacing.clock import DEFAULT_SPIN_NS, IMPLEMENTATION, MonotonicClock, wakeup_lateness
    from rawpacer.pacing.pacer import Pacer, PacerReport
    from rawpacer.pacing.rate import (
        PATTERNS,
        PHYSICAL_ETHERNET_OVERHEAD,
        SPINS,
        PaceSpec,
        Rate,
        link_bytes,
        parse_burst,
        parse_pattern,
        parse_rate,
        parse_seed,
        parse_spin,
    )
    from rawpacer.pacing.schedule import ConstantSchedule, PoissonSchedule, Schedule, make_schedule
    from rawpacer.pacing.stats import (
        QUANTILES,
        departure_times,
        ks_exponential,
        ks_pvalue,
        merge_timestamps,
        percentiles,
        stream_stats,
    )
    from rawpacer.pacing.txtime import pacing_qdiscs

_HOMES = {
    "DEFAULT_SPIN_NS": "rawpacer.pacing.clock",
    "IMPLEMENTATION": "rawpacer.pacing.clock",
    "MonotonicClock": "rawpacer.pacing.clock",
    "wakeup_lateness": "rawpacer.pacing.clock",
    "Pacer": "rawpacer.pacing.pacer",
    "PacerReport": "rawpacer.pacing.pacer",
    "PATTERNS": "rawpacer.pacing.rate",
    "PHYSICAL_ETHERNET_OVERHEAD": "rawpacer.pacing.rate",
    "SPINS": "rawpacer.pacing.rate",
    "PaceSpec": "rawpacer.pacing.rate",
    "Rate": "rawpacer.pacing.rate",
    "link_bytes": "rawpacer.pacing.rate",
    "parse_burst": "rawpacer.pacing.rate",
    "parse_pattern": "rawpacer.pacing.rate",
    "parse_rate": "rawpacer.pacing.rate",
    "parse_seed": "rawpacer.pacing.rate",
    "parse_spin": "rawpacer.pacing.rate",
    "ConstantSchedule": "rawpacer.pacing.schedule",
    "PoissonSchedule": "rawpacer.pacing.schedule",
    "Schedule": "rawpacer.pacing.schedule",
    "make_schedule": "rawpacer.pacing.schedule",
    "QUANTILES": "rawpacer.pacing.stats",
    "departure_times": "rawpacer.pacing.stats",
    "ks_exponential": "rawpacer.pacing.stats",
    "ks_pvalue": "rawpacer.pacing.stats",
    "merge_timestamps": "rawpacer.pacing.stats",
    "percentiles": "rawpacer.pacing.stats",
    "stream_stats": "rawpacer.pacing.stats",
    "pacing_qdiscs": "rawpacer.pacing.txtime",
}
"""Where each public name lives; imported on first use (``rawpacer.lazy``), so a module of this
package imports no more than it needs."""

__all__ = [
    "DEFAULT_SPIN_NS",
    "IMPLEMENTATION",
    "PATTERNS",
    "PHYSICAL_ETHERNET_OVERHEAD",
    "QUANTILES",
    "SPINS",
    "ConstantSchedule",
    "MonotonicClock",
    "PaceSpec",
    "Pacer",
    "PacerReport",
    "PoissonSchedule",
    "Rate",
    "Schedule",
    "departure_times",
    "ks_exponential",
    "ks_pvalue",
    "link_bytes",
    "make_schedule",
    "merge_timestamps",
    "pacing_qdiscs",
    "parse_burst",
    "parse_pattern",
    "parse_rate",
    "parse_seed",
    "parse_spin",
    "percentiles",
    "stream_stats",
    "wakeup_lateness",
]


def __getattr__(name: str) -> object:
    """A public name or submodule, imported on its first use (PEP 562)."""
    return lazy.attribute(__name__, _HOMES, name)
