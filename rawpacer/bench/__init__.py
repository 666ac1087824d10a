"""The side-by-side benchmark (calibrated op loops per writer, allocation counts, the Go seed) and
RFC 2544 on kernel paths.

``compare(...)`` is ``rawpacer compare`` from Python and ``rfc2544(...)`` is ``rawpacer rfc2544``:
same options, same checks, a ``Report`` or an RFC 2544 ``Run``.
"""

from __future__ import annotations

from typing import Any

from rawpacer.bench.calibrate import parse_benchtime, predict_n
from rawpacer.bench.methodology import Run
from rawpacer.bench.result import Report, Sample, WriterResult


def compare(**options: Any) -> Report:
    """Run a comparison in a fresh sandbox and return its Report (options as ``make_config``'s)."""
    from rawpacer.bench.config import make_config
    from rawpacer.bench.session import Session
    from rawpacer.host import describe, environment

    config = make_config(**options)
    return Session(config, Report(describe(), config.params(), environment=environment())).run()


def rfc2544(json: str | None = None, **options: Any) -> Run:
    """Run RFC 2544's tests in a fresh sandbox and return the Run (options as ``make_rfc2544_config``'s:
    writers, readers, topology, mtu, payload, ip_version, sizes, tests, trial, resolution,
    loss_tolerance, ...); ``json`` keeps the file up to date as trials end."""
    from rawpacer.bench.methodology import Recorder
    from rawpacer.bench.rfc2544_live import make_rfc2544_config, new_run_for, run_rfc2544

    config = make_rfc2544_config(**options)
    return run_rfc2544(config, Recorder(new_run_for(config), json))


__all__ = ["Report", "Run", "Sample", "WriterResult", "compare", "parse_benchtime", "predict_n", "rfc2544"]
