"""The HdrHistogram interval logs (``--hdr DIR``) of a run: one ``.hlog`` per writer and distribution.

Each pass of ``compare`` (or latency trial of ``rfc2544``) is one interval of the log, laid end to end
from 0 s with its own length, so HistogramLogAnalyzer shows them in order and can merge them.
"""

from __future__ import annotations

from rawpacer.bench import histograms
from rawpacer.bench.result import Report
from rawpacer.bench.rfc2544_suite.result import Run

SUFFIX = ".hlog"


def _safe(name: str) -> str:
    """A file name part from a writer's name (they are already plain; this keeps it so)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def compare_hlogs(report: Report) -> dict[str, str]:
    """``{writer}-{readers}r-op_ns.hlog`` (fan-out op times) and ``...-gap_dev_ns.hlog`` (paced streams)."""
    files = {}
    for result in report.results:
        for key, what in (("op_ns_hdr", "op_ns"), ("gap_dev_hdr", "gap_dev_ns")):
            passes = [(text, s.elapsed_ns / 1e9) for s in result.samples if (text := getattr(s, key)) is not None]
            if not passes:
                continue
            intervals = histograms.consecutive([t for t, _ in passes], [length for _, length in passes])
            comment = f"rawpacer compare: {result.writer}, {result.readers} readers, {what}, one interval per pass"
            files[f"{_safe(result.writer)}-{result.readers}r-{what}{SUFFIX}"] = histograms.hlog_text(intervals, comment)
    return files


def rfc2544_hlogs(run: Run) -> dict[str, str]:
    """``{writer}-{size}B-latency_ns.hlog`` (RFC 2544 26.2, at the throughput rate) and, after MLRsearch,
    ``...-latency_ns-pdr10.hlog`` (and 50, 90: at that % of the PDR): each latency trial one interval."""
    files = {}
    for entry in run.results:
        rates = {"": entry.latency_rate_pps} | {f"-pdr{k}": v["rate_pps"] for k, v in entry.latency_at_pdr.items()}
        for tail, rate in rates.items():
            trials = [t for t in entry.trials if t.latency_hdr is not None and rate is not None and t.rate == rate]
            if not trials:
                continue
            intervals = histograms.consecutive(
                [t.latency_hdr or "" for t in trials], [t.duration_s or 0.0 for t in trials]
            )
            comment = (
                f"rawpacer rfc2544: {entry.writer}, {entry.name}, latency ns at {rate:.6g} pps, one interval per trial"
            )
            name = f"{_safe(entry.writer)}-{_safe(entry.label)}B-latency_ns{tail}{SUFFIX}"
            files[name] = histograms.hlog_text(intervals, comment)
    return files
