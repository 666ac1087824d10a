"""MLRsearch (RFC 9971) through the Device seam, on synthetic devices whose NDR and PDR are known: pure."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from rich.console import Console

from rawpacer.bench.rfc2544_suite import (
    Recorder,
    SyntheticDevice,
    load_run,
    make_settings,
    mlr_search,
    new_run,
    run_suite,
)
from rawpacer.bench.rfc2544_suite.mlr import LATENCY_FRACTIONS, MIN_LOAD_FRACTION, counts, min_load
from rawpacer.bench.rfc2544_suite.search import Step
from rawpacer.bench.rfc2544_suite.sizes import FrameSize
from rawpacer.bench.rfc2544_suite.trial import Outcome, Trial, TrialResult
from rawpacer.errors import UsageError
from rawpacer.report.hdrlog import rfc2544_hlogs
from rawpacer.report.rfc2544_markdown import markdown_report
from rawpacer.report.rfc2544_table import print_run

FRAME = FrameSize.of(64)
TOP = 300_000.0
CAPACITY = 100_000.0
RESOLUTION = 0.005
SETTINGS = make_settings(sizes="64", tests="throughput", trial="1s", search="mlr", resolution="0.5%")


def device(**extra) -> SyntheticDevice:
    return SyntheticDevice(capacity_pps=CAPACITY, writer_max_pps=TOP, buffer_frames=0, **extra)


def pdr_rate(drop: float, pdr: float) -> float:
    """The highest rate losing at most ``pdr`` on a fluid server of CAPACITY that also drops ``drop``:
    drop + (rate - capacity) / rate <= pdr."""
    return CAPACITY / (1 - (pdr - drop))


def test_ndr_is_the_capacity_within_the_resolution():
    found = mlr_search(device(), FRAME, TOP, SETTINGS)
    assert found.ndr is not None and found.ndr.rate_pps is not None
    assert CAPACITY * (1 - 2 * RESOLUTION) <= found.ndr.rate_pps <= CAPACITY
    assert found.ndr.upper_pps is not None and found.ndr.upper_pps > CAPACITY
    assert found.ndr.limited_by == "loss"
    assert found.pdr is not None and found.pdr.rate_pps is not None
    assert found.ndr.rate_pps <= found.pdr.rate_pps <= pdr_rate(0.0, SETTINGS.pdr)


def test_a_dut_that_drops_a_little_has_no_ndr_and_a_pdr_near_capacity():
    found = mlr_search(device(drop=0.001), FRAME, TOP, SETTINGS)
    assert found.ndr is not None and found.ndr.rate_pps is None
    assert found.pdr is not None and found.pdr.rate_pps is not None
    assert CAPACITY * (1 - 2 * RESOLUTION) <= found.pdr.rate_pps <= pdr_rate(0.001, SETTINGS.pdr)
    assert any("NDR unreachable" in note for note in found.notes)


def test_a_larger_pdr_loss_ratio_finds_a_higher_rate():
    wide = dataclasses.replace(SETTINGS, pdr=0.05)
    found = mlr_search(device(), FRAME, TOP, wide)
    assert found.pdr is not None and found.pdr.rate_pps is not None
    assert pdr_rate(0.0, 0.05) * (1 - 2 * RESOLUTION) <= found.pdr.rate_pps <= pdr_rate(0.0, 0.05)


def test_a_writer_that_cannot_offer_the_rate_is_the_limit_not_a_pass():
    found = mlr_search(device(paced_max_pps=50_000.0), FRAME, TOP, SETTINGS)
    assert found.ndr is not None and found.ndr.rate_pps is not None
    assert 50_000 * (1 - 2 * RESOLUTION) <= found.ndr.rate_pps <= 50_000 / (1 - SETTINGS.shortfall)
    assert found.ndr.limited_by == "writer"


@dataclasses.dataclass
class DroppingDut:
    """A synthetic device whose losses the DUT's own counters claim (as a tbf would)."""

    inner: SyntheticDevice
    writer: str = "dut"

    def max_rate(self, frame: FrameSize) -> float:
        return self.inner.max_rate(frame)

    def run(self, trial: Trial) -> TrialResult:
        result = self.inner.run(trial)
        return dataclasses.replace(result, dut_drops=result.lost)


def test_the_d_mark_comes_from_the_duts_drop_counters():
    found = mlr_search(DroppingDut(device()), FRAME, TOP, SETTINGS)
    assert found.ndr is not None and found.ndr.limited_by == "dut"
    assert found.pdr is not None and found.pdr.limited_by == "dut"


def test_latency_at_10_50_and_90_percent_of_the_pdr():
    conf = dataclasses.replace(SETTINGS, tests=("throughput", "latency"))
    found = mlr_search(device(), FRAME, TOP, conf)
    assert found.pdr is not None and found.pdr.rate_pps is not None
    assert sorted(found.latency) == ["10", "50", "90"]
    for fraction in LATENCY_FRACTIONS:
        key = f"{round(fraction * 100)}"
        assert found.latency_rates[key] == pytest.approx(found.pdr.rate_pps * fraction)
        assert found.latency[key].count > 0 and found.latency[key].hdr is not None
    assert found.latency["90"].percentiles["p99"] > found.latency["10"].percentiles["p99"]  # queueing grows


def test_counts_take_a_writers_shortfall_as_unsent_and_a_rounded_up_trial_as_intended():
    trial = Trial("throughput", FRAME, 1_000.0, 1.0)
    short = TrialResult(trial, sent=1000, delivered=1000, intact=1000, lost=0, achieved_pps=800.0)
    found = counts(Step(short, Outcome.WRITER), 1.0)
    assert (found.intended_count, found.offered_count, found.loss_count) == (1000, 800, 0)
    assert found.loss_ratio == pytest.approx(0.2)
    whole = TrialResult(trial, sent=1100, delivered=1100, intact=1100, lost=0, achieved_pps=1000.0)
    assert counts(Step(whole, Outcome.PASS), 1.0).loss_ratio == 0.0


def test_the_run_records_ndr_pdr_and_repeats_and_prints_them(tmp_path):
    conf = dataclasses.replace(SETTINGS, tests=("throughput", "latency"), repeat=3)
    path = tmp_path / "r.json"
    run = run_suite([device(noise=0.01)], conf, Recorder(new_run(conf, {"cpu": "c"}, writers=["synthetic"]), path))
    entry = run.results[0]
    assert entry.ndr_pps is not None and entry.pdr_pps is not None and entry.throughput_pps == entry.ndr_pps
    assert len(entry.ndr_runs) == 3 and entry.ndr_spread is not None and entry.ndr_spread < 0.05
    assert entry.throughput_runs == entry.ndr_runs
    data = json.loads(path.read_text())
    assert data["params"]["search"] == "mlr" and data["params"]["pdr"] == 0.005
    row = data["results"][0]
    assert row["ndr_mbit"] == pytest.approx(row["ndr_pps"] * 64 * 8 / 1e6)
    assert set(row["latency_at_pdr"]) == {"10", "50", "90"}
    assert load_run(path).results[0].latency_at_pdr == entry.latency_at_pdr
    files = rfc2544_hlogs(run)
    assert {"synthetic-64B-latency_ns-pdr10.hlog", "synthetic-64B-latency_ns.hlog"} <= set(files)
    out = io.StringIO()
    print_run(run, Console(file=out, width=250))
    text = out.getvalue()
    assert "MLRsearch (RFC 9971): NDR (no loss) and PDR (0.5 % loss)" in text
    assert "90 % PDR" in text and "p99.99" in text and "repeated throughput searches" in text
    report = markdown_report(run, "r.png")
    assert "- Throughput: MLRsearch (RFC 9971" in report and "Each search ran 3 times" in report


def test_options():
    assert make_settings().search == "binary" and make_settings().pdr == 0.005
    assert make_settings(search="mlr", pdr="1%").pdr == pytest.approx(0.01)
    for bad in ("0", "100%", "1", "-1%"):
        with pytest.raises(UsageError, match="pdr"):
            make_settings(pdr=bad)
    with pytest.raises(UsageError, match="search 'fast' is not allowed; use one of: binary, mlr"):
        make_settings(search="fast")
    with pytest.raises(UsageError, match="repeat"):
        make_settings(repeat=0)
    assert MIN_LOAD_FRACTION < RESOLUTION


def test_a_writer_that_offers_nothing_asked_is_named_not_the_path():
    found = mlr_search(device(paced_max_pps=100.0), FRAME, TOP, SETTINGS)  # below the lowest load tried
    assert found.ndr is not None and found.ndr.rate_pps is None and found.ndr.limited_by == "writer"
    assert any(note.startswith("NDR not found: the writer could not offer") for note in found.notes)
    assert not any("unreachable" in note for note in found.notes)


def test_the_lowest_load_carries_enough_datagrams_to_see_the_pdrs_loss():
    assert min_load(TOP, SETTINGS) == 8_000.0  # 40 / 0.5 % datagrams in a 1 s trial
    assert min_load(TOP, dataclasses.replace(SETTINGS, trial_s=60.0)) == TOP * MIN_LOAD_FRACTION
    assert min_load(1_000.0, SETTINGS) == 500.0  # never above half the writer's maximum
