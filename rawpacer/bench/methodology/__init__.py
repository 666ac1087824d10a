"""RFC 2544 (section 26) on kernel paths: throughput, latency, frame loss rate and back-to-back.

The methodology is pure: ``sizes`` maps RFC frame sizes to UDP payloads, ``trial`` holds the Trial,
TrialResult and the ``Device`` protocol, ``search`` the four searches, ``mlr`` MLRsearch's NDR and PDR (RFC 9971), ``suite`` a whole run, ``result``
the JSON model written as the run goes, ``options`` the checked settings. ``SyntheticDevice`` stands
in for the live runner in tests and docs. See docs/rfc2544.md.
"""

from rawpacer.bench.methodology.latency import LatencyStats
from rawpacer.bench.methodology.mlr import mlr_search
from rawpacer.bench.methodology.options import Settings, make_settings
from rawpacer.bench.methodology.result import Entry, Recorder, Run, load_run
from rawpacer.bench.methodology.search import back_to_back, latency, loss_curve, throughput
from rawpacer.bench.methodology.sizes import FrameSize, payload_for, size_for
from rawpacer.bench.methodology.suite import new_run, run_entry, run_suite, trial_budget
from rawpacer.bench.methodology.synthetic import SyntheticDevice
from rawpacer.bench.methodology.trial import Device, Outcome, Trial, TrialResult

__all__ = [
    "Device",
    "Entry",
    "FrameSize",
    "LatencyStats",
    "Outcome",
    "Recorder",
    "Run",
    "Settings",
    "SyntheticDevice",
    "Trial",
    "TrialResult",
    "back_to_back",
    "latency",
    "load_run",
    "loss_curve",
    "make_settings",
    "mlr_search",
    "new_run",
    "payload_for",
    "run_entry",
    "run_suite",
    "size_for",
    "throughput",
    "trial_budget",
]
