"""The side-by-side benchmark (calibrated op loops per writer, allocation counts, the Go seed) and
RFC 2544 on kernel paths.

``compare(...)`` is ``rawpacer compare`` from Python and ``rfc2544(...)`` is ``rawpacer rfc2544``:
same options, same checks, a ``Report`` or an RFC 2544 ``Run``. Their keyword parameters are
``make_config``'s and ``make_rfc2544_config``'s themselves (``takes``), so that an editor and mypy
see them and the lists are written once.
"""

from __future__ import annotations

from rawpacer.bench.calibrate import parse_benchtime, predict_n
from rawpacer.bench.config import Config, make_config
from rawpacer.bench.result import Report, Sample, WriterResult
from rawpacer.bench.rfc2544_live import Rfc2544Config, make_rfc2544_config, new_run_for, run_rfc2544
from rawpacer.bench.rfc2544_suite import Recorder, Run
from rawpacer.bench.takes import takes


@takes(make_config)
def compare(config: Config) -> Report:
    """Run a comparison in a fresh sandbox and return its Report; every option is ``rawpacer
    compare``'s, checked by ``make_config`` (UsageError, one line) before anything is created."""
    from rawpacer.bench.session import Session
    from rawpacer.host import describe, environment

    return Session(config, Report(describe(), config.params(), environment=environment())).run()


@takes(make_rfc2544_config)
def rfc2544(run: Rfc2544Config) -> Run:
    """Run RFC 2544's tests in a fresh sandbox and return the Run; the options are ``rawpacer
    rfc2544``'s (durations like ``"2s"`` or seconds, fractions like ``"0.5%"`` or 0.005), checked
    before anything is created; ``json`` keeps that file up to date as trials end."""
    return run_rfc2544(run, Recorder(new_run_for(run), run.json))


__all__ = ["Report", "Run", "Sample", "WriterResult", "compare", "parse_benchtime", "predict_n", "rfc2544"]
