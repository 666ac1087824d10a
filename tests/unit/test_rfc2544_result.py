"""The RFC 2544 run: the JSON written trial by trial, what a cut-short run keeps, tables, report and plot."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from rawpacer import outputs
from rawpacer.bench.rfc2544_suite import Recorder, SyntheticDevice, load_run, make_settings, new_run, run_suite
from rawpacer.bench.rfc2544_suite.result import Entry, Run, mbit
from rawpacer.bench.rfc2544_suite.sizes import FrameSize
from rawpacer.bench.rfc2544_suite.trial import Trial, TrialResult
from rawpacer.errors import SandboxError
from rawpacer.report.rfc2544_markdown import markdown_report, to_markdown, write_report
from rawpacer.report.rfc2544_plot import plot
from rawpacer.report.rfc2544_table import grids, print_run, throughput_grid

MACHINE = {"cpu": "Test CPU", "cores": 2, "kernel": "6.18", "python": "3.11"}
ENTRY_KEYS = {
    "writer",
    "frame_size",
    "payload_bytes",
    "throughput_pps",
    "throughput_mbit",
    "trials",
    "latency_ns",
    "latency_source",
    "loss_curve",
    "back_to_back_frames",
    "reader_capacity_pps",
    "reader_bound",
}
TRIAL_KEYS = {"rate", "sent", "delivered", "intact", "lost", "not_sent", "achieved_pps", "outcome"}


def device(**extra) -> SyntheticDevice:
    options = {"capacity_pps": 400_000.0, "writer_max_pps": 1_000_000.0, "buffer_frames": 2000, "seed": 1}
    return SyntheticDevice(**(options | extra))


def quick(**extra):
    return make_settings(**({"sizes": "64,1518", "trial": "10ms", "b2b_repeats": 2, "resolution": "1%"} | extra))


@pytest.fixture
def finished(tmp_path):
    conf = quick()
    devices = [device(reader_capacity_pps=420_000.0), device(writer="slow", writer_max_pps=300_000.0)]
    run = run_suite(devices, conf, Recorder(new_run(conf, MACHINE, readers=4), tmp_path / "run.json"))
    return run, tmp_path / "run.json"


def test_the_json_has_every_key_the_issue_names_per_writer_and_frame_size(finished):
    _run, path = finished
    data = json.loads(path.read_text())
    assert set(data) >= {"machine", "params", "results", "interrupted"} and data["machine"] == MACHINE
    assert data["params"]["readers"] == 4 and data["params"]["sizes"] == [64, 1518]
    assert [(e["writer"], e["frame_size"]) for e in data["results"]] == [
        ("synthetic", 64),
        ("synthetic", 1518),
        ("slow", 64),
        ("slow", 1518),
    ]
    for entry in data["results"]:
        assert ENTRY_KEYS <= set(entry) and entry["finished"]
        assert set(entry["latency_ns"]) == {"p50", "p99", "p999", "max"}
        assert entry["latency_source"] == "writer-clock"
        assert all(TRIAL_KEYS <= set(t) for t in entry["trials"])
        assert entry["throughput_mbit"] == pytest.approx(entry["throughput_pps"] * entry["frame_size"] * 8 / 1e6)
        assert all(len(point) == 2 for point in entry["loss_curve"])
    assert data["results"][0]["payload_bytes"] == 18 and data["results"][1]["payload_bytes"] == 1472


def test_reader_bound_marks_a_figure_within_80_percent_of_the_readers_capacity(finished):
    run, _ = finished
    bound, free = run.find("synthetic", 64), run.find("slow", 64)
    assert bound.reader_capacity_pps == 420_000 and bound.reader_bound
    assert bound.loss_reader_bound and bound.loss_reader_bound[0] == 100
    assert free.reader_capacity_pps is None and not free.reader_bound and free.limited_by == "writer"


def test_the_file_reads_back_to_the_same_run(finished):
    run, path = finished
    again = load_run(path)
    assert again.to_dict() == run.to_dict()
    assert not list(path.parent.glob(".*.tmp")), "no temporary file is left beside the JSON"


class Interrupting(SyntheticDevice):
    """Raises KeyboardInterrupt on trial number ``stop`` (as Ctrl-C would reach the runner)."""

    stop = 5

    def run(self, trial: Trial) -> TrialResult:
        if len(self.trials) + 1 == self.stop:
            raise KeyboardInterrupt
        return super().run(trial)


def test_a_run_cut_short_keeps_every_finished_trial_in_the_file(tmp_path):
    conf = quick()
    path = tmp_path / "cut.json"
    recorder = Recorder(new_run(conf, MACHINE), path)
    with pytest.raises(KeyboardInterrupt):
        run_suite([Interrupting(capacity_pps=400_000.0, writer_max_pps=1e6)], conf, recorder)
    data = json.loads(path.read_text())
    assert data["interrupted"] is True
    (entry,) = data["results"]
    assert len(entry["trials"]) == 4 and not entry["finished"] and entry["writer_max_pps"] == 1e6


def test_every_trial_reaches_the_file_and_the_listener_as_it_finishes(tmp_path):
    conf = quick(tests="throughput")
    path = tmp_path / "live.json"
    seen = []

    def listen(entry: Entry, record) -> None:
        on_disk = json.loads(path.read_text())["results"][-1]["trials"]
        seen.append((len(on_disk), len(entry.trials), record.test))

    run_suite([device()], conf, Recorder(new_run(conf, MACHINE), path, on_trial=listen))
    assert seen and all(disk == kept for disk, kept, _ in seen)
    assert [n for n, _, _ in seen[:3]] == [1, 2, 3] and {t for _, _, t in seen} == {"throughput"}


class Broken(SyntheticDevice):
    def max_rate(self, frame: FrameSize) -> float:
        if frame.size == 64:
            raise SandboxError("no namespace for you")
        return super().max_rate(frame)


def test_a_failing_entry_records_its_error_and_the_run_goes_on():
    conf = quick(tests="loss")
    run = run_suite([Broken(capacity_pps=4e5, writer_max_pps=1e6)], conf, Recorder(new_run(conf, MACHINE)))
    failed, done = run.results
    assert failed.error == "no namespace for you" and not failed.finished
    assert done.error is None and done.finished and done.loss_curve


def test_latency_without_a_throughput_rate_is_skipped_with_a_note():
    conf = quick(tests="latency")
    run = run_suite([device(capacity_pps=1.0, buffer_frames=0)], conf, Recorder(new_run(conf, MACHINE)))
    entry = run.results[0]
    assert entry.latency_ns is None and "latency not measured: no throughput rate held" in entry.notes
    assert {t.test for t in entry.trials} == {"throughput"}


def test_mbit_counts_the_frame_with_fcs():
    assert mbit(1_000_000, 64) == 512.0 and mbit(None, 64) is None


def test_tables_mark_reader_bound_and_writer_limited_figures(finished):
    run, _ = finished
    grid = throughput_grid(run)
    synthetic, slow = grid.rows
    assert synthetic[1].endswith(" R") and slow[1].endswith(" W")
    assert [line[0] for line in grid.legend()] == ["R", "W"]
    assert [g.title.split(" (")[0] for g in grids(run)] == ["throughput", "latency", "frame loss rate", "back-to-back"]
    out = io.StringIO()
    print_run(run, Console(file=out, width=200))
    text = out.getvalue()
    assert "Test CPU" in text and "reader-bound" in text and "slow" in text


def test_an_unconfirmed_figure_is_shown_with_a_question_mark():
    run = Run(MACHINE, {"tests": ["throughput"]})
    run.results.append(Entry("w", 64, 18, throughput_candidate_pps=1000.0, finished=True, limited_by="loss"))
    assert throughput_grid(run).rows == [["w", "1k pps, 512kbit/s ?"]]


def test_markdown_report_has_the_rfc_sections_tables_and_graphs(finished, tmp_path):
    run, _ = finished
    target = write_report(run, tmp_path / "appendix.md")
    text = target.read_text()
    for heading in ("## What was tested", "## Trials", "## Results", "## Statement of performance", "## Graphs"):
        assert heading in text
    assert "![RFC 2544 graphs](appendix.png)" in text
    assert (tmp_path / "appendix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert to_markdown(throughput_grid(run)) in text
    assert "64 B (18 B UDP payload)" in text and "at least 50" in text
    assert "interrupted" not in markdown_report(run).lower()


def test_a_report_written_through_a_temporary_file_links_the_graph_by_its_final_name(finished, tmp_path):
    run, _ = finished  # as `rawpacer rfc2544 --report` writes it: outputs.write hands over a temporary file
    written = outputs.write(
        tmp_path / "r.md", lambda p: write_report(run, p, named=outputs.final_path(p)), suffix=".md"
    )
    assert written.ok and written.path == tmp_path / "r.md"
    assert "![RFC 2544 graphs](r.png)" in written.path.read_text()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no hidden leftovers
    assert outputs.final_path(outputs.temporary(tmp_path / "x.json")) == tmp_path / "x.json"


def test_plot_draws_a_run_read_back_from_json(finished, tmp_path):
    _, path = finished
    target = plot(load_run(path), tmp_path / "graphs.png")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("kernel", "readers", "bound"), [(1e6, 300_000.0, True), (300_000.0, 2e6, False)])
def test_readers_slower_than_the_kernel_make_the_figure_reader_bound(kernel, readers, bound):
    conf = quick(tests="throughput", sizes="64")
    found = SyntheticDevice(capacity_pps=kernel, writer_max_pps=2e6, reader_capacity_pps=readers, buffer_frames=0)
    (entry,) = run_suite([found], conf, Recorder(new_run(conf, MACHINE))).results
    assert entry.throughput_pps == pytest.approx(min(kernel, readers), rel=0.02)
    assert entry.reader_capacity_pps == readers and entry.reader_bound is bound
    assert all(t.reader_capacity_pps == readers for t in entry.trials)
    assert throughput_grid(Run(MACHINE, {}, [entry])).rows[0][1].endswith(" R") is bound


def test_an_imix_row_is_labelled_in_tables_report_plot_and_json(tmp_path):
    conf = quick(sizes="64,imix", tests="throughput,back-to-back")
    run = run_suite([device()], conf, Recorder(new_run(conf, MACHINE, readers=4), tmp_path / "run.json"))
    back = load_run(tmp_path / "run.json")
    assert back.sizes == ["64", "imix"] and back.params["sizes"] == [64, "imix"]
    imix = back.find("synthetic", "imix")
    assert imix is not None and imix.mix == "imix" and imix.mean_frame == pytest.approx(4342 / 12)
    grid = throughput_grid(back)
    assert grid.columns == ["writer", "64 B", "imix"]
    pps = imix.throughput_pps
    assert pps is not None and imix.throughput_mbit == pytest.approx(pps * 4342 / 12 * 8 / 1e6)
    text = markdown_report(run)
    assert "imix (a size mix, its largest 1472 B UDP payload)" in text and "imix (mean 361.8 B)" in text
    assert plot(back, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
