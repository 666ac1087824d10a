"""The side-by-side benchmark: calibrated op loops per writer, allocation counts, the Go seed.

``compare(...)`` is ``rawpacer compare`` from Python: same options, same checks, a ``Report``.
"""

from __future__ import annotations

from typing import Any

from rawpacer.bench.calibrate import parse_benchtime, predict_n
from rawpacer.bench.result import Report, Sample, WriterResult


def compare(**options: Any) -> Report:
    """Run a comparison in a fresh sandbox and return its Report (options as ``make_config``'s)."""
    from rawpacer.bench.config import make_config
    from rawpacer.bench.machine import describe
    from rawpacer.bench.session import Session

    config = make_config(**options)
    return Session(config, Report(describe(), config.params())).run()


__all__ = ["Report", "Sample", "WriterResult", "compare", "parse_benchtime", "predict_n"]
