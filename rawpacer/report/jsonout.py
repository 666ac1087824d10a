"""The report as JSON (schema in docs/benchmark.md), written atomically."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from rawpacer import outputs
from rawpacer.bench.result import Report

SCHEMA_VERSION = 2


def _clean(value: Any) -> Any:
    """JSON has no inf/nan: those become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(report: Report) -> str:
    """The whole report: machine, parameters, results (with speed-ups), sweep, notes."""
    return json.dumps(_clean(dict(schema=SCHEMA_VERSION, **report.to_dict())), indent=2)


def write_json(report: Report, path: str | os.PathLike[str]) -> Path:
    """Write ``to_json(report)`` to ``path`` (via a temporary file, so no half-written JSON)."""
    target = Path(path)
    text = to_json(report) + "\n"
    outputs.replace(target, lambda tmp: tmp.write_text(text))
    return target
