"""Pacing: streams that leave at a chosen rate, and the figures that say how well they did.

``rate`` parses --rate/--burst/--pattern/--seed into a ``PaceSpec``; ``schedule`` says when each
departure is due; ``pacer`` holds a loop to it (``Pacer.wait``), or lends its C core to the transmit
engine's loop (``Pacer.loop_core``); ``stats`` turns kernel receive timestamps into the JSON figures; ``txtime``
says whether the kernel could pace instead (fq/etf); ``rxstamp`` reads receive timestamps.
"""

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
