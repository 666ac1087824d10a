"""Pacing: streams that leave at a chosen rate, and the figures that say how well they did.

``rate`` parses --rate/--burst/--pattern/--seed/--spin/--catch-up into a ``PaceSpec``; ``schedule`` says when each
departure is due; ``pacer`` holds a loop to it (``Pacer.wait``), or lends its C core to the transmit
engine's loop (``Pacer.loop_core``); ``stats`` turns kernel receive timestamps into the JSON figures; ``txtime``
says whether the kernel could pace instead (fq/etf); ``rxstamp`` reads receive timestamps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawpacer import lazy

if TYPE_CHECKING:  # ``A as A``: re-exported for mypy, which cannot read the computed __all__
    from rawpacer.pacing.clock import DEFAULT_SPIN_NS as DEFAULT_SPIN_NS
    from rawpacer.pacing.clock import IMPLEMENTATION as IMPLEMENTATION
    from rawpacer.pacing.clock import MonotonicClock as MonotonicClock
    from rawpacer.pacing.clock import wakeup_lateness as wakeup_lateness
    from rawpacer.pacing.pacer import Pacer as Pacer
    from rawpacer.pacing.pacer import PacerReport as PacerReport
    from rawpacer.pacing.rate import CATCH_UP_BURST as CATCH_UP_BURST
    from rawpacer.pacing.rate import DEFAULT_CATCH_UP as DEFAULT_CATCH_UP
    from rawpacer.pacing.rate import PATTERNS as PATTERNS
    from rawpacer.pacing.rate import PHYSICAL_ETHERNET_OVERHEAD as PHYSICAL_ETHERNET_OVERHEAD
    from rawpacer.pacing.rate import SPINS as SPINS
    from rawpacer.pacing.rate import PaceSpec as PaceSpec
    from rawpacer.pacing.rate import Rate as Rate
    from rawpacer.pacing.rate import Waits as Waits
    from rawpacer.pacing.rate import catch_up_label as catch_up_label
    from rawpacer.pacing.rate import link_bytes as link_bytes
    from rawpacer.pacing.rate import parse_burst as parse_burst
    from rawpacer.pacing.rate import parse_catch_up as parse_catch_up
    from rawpacer.pacing.rate import parse_pattern as parse_pattern
    from rawpacer.pacing.rate import parse_rate as parse_rate
    from rawpacer.pacing.rate import parse_seed as parse_seed
    from rawpacer.pacing.rate import parse_spin as parse_spin
    from rawpacer.pacing.schedule import ConstantSchedule as ConstantSchedule
    from rawpacer.pacing.schedule import PoissonSchedule as PoissonSchedule
    from rawpacer.pacing.schedule import Schedule as Schedule
    from rawpacer.pacing.schedule import make_schedule as make_schedule
    from rawpacer.pacing.stats import QUANTILES as QUANTILES
    from rawpacer.pacing.stats import departure_times as departure_times
    from rawpacer.pacing.stats import ks_exponential as ks_exponential
    from rawpacer.pacing.stats import ks_pvalue as ks_pvalue
    from rawpacer.pacing.stats import merge_timestamps as merge_timestamps
    from rawpacer.pacing.stats import percentiles as percentiles
    from rawpacer.pacing.stats import stream_stats as stream_stats
    from rawpacer.pacing.txtime import pacing_qdiscs as pacing_qdiscs

_HOMES = lazy.homes(
    {
        "rawpacer.pacing.clock": ("DEFAULT_SPIN_NS", "IMPLEMENTATION", "MonotonicClock", "wakeup_lateness"),
        "rawpacer.pacing.pacer": ("Pacer", "PacerReport"),
        "rawpacer.pacing.rate": (
            "CATCH_UP_BURST",
            "DEFAULT_CATCH_UP",
            "PATTERNS",
            "PHYSICAL_ETHERNET_OVERHEAD",
            "SPINS",
            "PaceSpec",
            "Rate",
            "Waits",
            "catch_up_label",
            "link_bytes",
            "parse_burst",
            "parse_catch_up",
            "parse_pattern",
            "parse_rate",
            "parse_seed",
            "parse_spin",
        ),
        "rawpacer.pacing.schedule": ("ConstantSchedule", "PoissonSchedule", "Schedule", "make_schedule"),
        "rawpacer.pacing.stats": (
            "QUANTILES",
            "departure_times",
            "ks_exponential",
            "ks_pvalue",
            "merge_timestamps",
            "percentiles",
            "stream_stats",
        ),
        "rawpacer.pacing.txtime": ("pacing_qdiscs",),
    }
)
"""Where each public name lives; imported on first use (``rawpacer.lazy``), so a module of this
package imports no more than it needs."""

__all__ = list(_HOMES)


def __getattr__(name: str) -> object:
    """A public name or submodule, imported on its first use (PEP 562)."""
    return lazy.attribute(__name__, _HOMES, name)
