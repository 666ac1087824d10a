"""RFC 2544 (section 26) on kernel paths: throughput, latency, frame loss rate and back-to-back.

The RFC 2544 suite is pure: ``sizes`` maps RFC frame sizes to UDP payloads, ``trial`` holds the Trial,
TrialResult and the ``Device`` protocol, ``search`` the four searches, ``mlr`` MLRsearch's NDR and PDR (RFC 9971), ``suite`` a whole run, ``result``
the JSON model written as the run goes, ``options`` the checked settings. ``SyntheticDevice`` stands
in for the live runner in tests and docs. See docs/rfc2544.md.
"""

from rawpacer.bench.rfc2544_suite.latency import LatencyStats
from rawpacer.bench.rfc2544_suite.mlr import mlr_search
from rawpacer.bench.rfc2544_suite.options import Settings, make_settings
from rawpacer.bench.rfc2544_suite.result import Entry, Recorder, Run, load_run
from rawpacer.bench.rfc2544_suite.search import back_to_back, latency, loss_curve, throughput
from rawpacer.bench.rfc2544_suite.sizes import FrameSize, payload_for, size_for
from rawpacer.bench.rfc2544_suite.suite import new_run, run_entry, run_suite, trial_budget
from rawpacer.bench.rfc2544_suite.synthetic import SyntheticDevice
from rawpacer.bench.rfc2544_suite.trial import Device, Outcome, Trial, TrialResult

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
