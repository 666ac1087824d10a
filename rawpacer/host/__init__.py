"""The host a result was measured on, in every result: where (``environment``), and what else it did
while a pass or trial ran (``activity``: steal, other processes, stalls), so a figure the host spoiled
says so; ``stalls`` is doctor's probe of how often the machine takes the CPU away.
See docs/trusting-a-figure.md.
"""

from rawpacer.host.activity import (
    OTHERS_PCT,
    STALL_NS,
    STEAL_PCT,
    CpuTimes,
    HostActivity,
    HostSample,
    activity,
    parse_loadavg,
    parse_pid_stat,
    parse_stat,
    sample,
    worst,
)
from rawpacer.host.environment import cores, cpu_model, describe, environment, timing_line
from rawpacer.host.stalls import StallProbe, probe

__all__ = [
    "OTHERS_PCT",
    "STALL_NS",
    "STEAL_PCT",
    "CpuTimes",
    "HostActivity",
    "HostSample",
    "StallProbe",
    "activity",
    "cores",
    "cpu_model",
    "describe",
    "environment",
    "parse_loadavg",
    "parse_pid_stat",
    "parse_stat",
    "probe",
    "sample",
    "timing_line",
    "worst",
]
