"""The side-by-side benchmark: calibrated op loops per writer, allocation counts, the Go seed."""

from rawpacer.bench.calibrate import parse_benchtime, predict_n
from rawpacer.bench.result import Report, Sample, WriterResult

__all__ = ["Report", "Sample", "WriterResult", "parse_benchtime", "predict_n"]
