"""The host in every result: /proc parsing and the activity arithmetic on synthetic texts, the spoiled
judgement and its one place of thresholds, the environment's fields, and how reports carry and show them."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import platform

import pytest
from rich.console import Console

from rawpacer import host
from rawpacer.bench.result import Report, Sample, WriterResult
from rawpacer.bench.rfc2544_suite import Recorder, SyntheticDevice, make_settings, new_run, run_suite
from rawpacer.bench.rfc2544_suite.result import Run
from rawpacer.bench.rfc2544_suite.trial import Trial, TrialResult
from rawpacer.host import HostActivity, HostSample, activity, parse_loadavg, parse_pid_stat, parse_stat
from rawpacer.host.environment import governor
from rawpacer.host.stalls import PAUSE_NS, count_pauses
from rawpacer.readers.counts import Counts
from rawpacer.report.jsonout import to_json
from rawpacer.report.rfc2544_table import back_to_back_grid, throughput_grid
from rawpacer.report.table import host_warning, print_report

STAT = """cpu  {user} 0 {system} {idle} 0 {irq} 0 {steal} 0 0
cpu0 1 0 1 1 0 0 0 0 0 0
cpu1 1 0 1 1 0 0 0 0 0 0
intr 12345 0 0
ctxt 999
"""


def stat(user: int = 0, system: int = 0, idle: int = 0, irq: int = 0, steal: int = 0) -> str:
    return STAT.format(user=user, system=system, idle=idle, irq=irq, steal=steal)


def at(text: str, own: dict[int, int], load: str = "0.50 0.40 0.30 1/100 42", ns: int = 0) -> HostSample:
    cpu, cpus = parse_stat(text)
    return HostSample(cpu, cpus, parse_loadavg(load), own, ns)


def test_parse_stat_reads_the_aggregate_line_and_counts_cpus():
    cpu, cpus = parse_stat("cpu  10 1 20 300 4 5 6 7 8 9\ncpu0 5 0 10 150 2 2 3 3 4 4\ncpu1 5 1 10 150 2 3 3 4 4 5\n")
    assert (cpu.user, cpu.nice, cpu.system, cpu.idle, cpu.iowait, cpu.irq, cpu.softirq, cpu.steal) == (
        10,
        1,
        20,
        300,
        4,
        5,
        6,
        7,
    )
    assert (cpus, cpu.processes, cpu.interrupts, cpu.total) == (2, 31, 11, 31 + 11 + 300 + 4 + 7)
    old, _ = parse_stat("cpu  10 1 20 300\n")  # a kernel before steal: the missing counters are 0
    assert old.steal == 0 and old.total == 331
    with pytest.raises(ValueError):
        parse_stat("cpu0 1 2 3 4\n")


def test_parse_pid_stat_splits_after_the_last_parenthesis():
    text = "4242 (a) b (c)) R 1 2 3 4 5 6 7 8 9 10 120 35 0 0 20 0 1 0 100 1000 50"
    assert parse_pid_stat(text) == 155
    assert parse_loadavg("1.25 0.75 0.10 2/300 4242\n") == (1.25, 0.75, 0.10)


def test_steal_and_other_processes_are_shares_of_the_interval_and_the_warning_says_them():
    before = at(stat(), {1: 100})
    # 2 CPUs, 1000 ticks in all (500 each): 71 stolen, 400 busy in processes of which 185 were ours
    after = at(stat(user=300, system=100, idle=529, steal=71), {1: 285}, load="2.00 1.00 0.50 3/100 42", ns=10**9)
    found = activity(before, after)
    assert found.steal_pct == pytest.approx(7.1)
    assert found.others_pct == pytest.approx(43.0)
    assert found.own_pct == pytest.approx(37.0)
    assert (found.load_avg, found.interval_ns, found.spoiled) == ((2.0, 1.0, 0.5), 10**9, True)
    assert found.warning == "figures may be the host's, not the path's: steal 7.1 %, other processes 43 % of a CPU"
    assert json.loads(json.dumps(found.to_dict()))["why"] == found.why


def test_interrupts_are_not_other_processes():
    found = activity(at(stat(), {1: 0}), at(stat(user=100, irq=300, idle=600), {1: 100}))
    assert found.interrupts_pct == pytest.approx(60.0) and found.others_pct == 0.0 and not found.spoiled


def test_a_quiet_interval_is_not_spoiled_and_a_pid_that_exited_counts_for_nothing():
    before = at(stat(), {1: 0, 2: 50})
    after = at(stat(user=150, idle=850), {1: 100})  # pid 2 gone: its ticks are not ours, nor negative
    found = activity(before, after)
    assert found.others_pct == pytest.approx(10.0) and found.own_pct == pytest.approx(20.0)
    assert not found.spoiled and found.why == ""


def test_one_tick_of_rounding_does_not_spoil_a_short_interval():
    """20 ticks on 2 CPUs (a 100 ms pass): one tick of steal reads 5 %, but is within /proc's rounding."""
    found = activity(at(stat(), {1: 0}), at(stat(user=8, idle=11, steal=1), {1: 8}))
    assert found.steal_pct == pytest.approx(5.0) and not found.spoiled
    found = activity(at(stat(), {1: 0}), at(stat(user=8, idle=10, steal=2), {1: 8}))
    assert found.steal_pct == pytest.approx(10.0) and found.spoiled and found.why == "steal 10.0 %"


def test_no_tick_passed_gives_no_figures_and_a_stall_alone_spoils():
    sample = at(stat(user=5, idle=5), {1: 5})
    found = activity(sample, sample, longest_stall_ns=None)
    assert (found.steal_pct, found.others_pct, found.own_pct, found.spoiled) == (None, None, None, False)
    stalled = activity(sample, sample, longest_stall_ns=host.STALL_NS + 2_100_000)
    assert stalled.spoiled and stalled.why == "a stall of 12.1 ms"
    assert not activity(sample, sample, longest_stall_ns=host.STALL_NS).spoiled


def test_worst_picks_the_figure_furthest_past_its_threshold():
    sample = at(stat(), {1: 0})
    mild = activity(sample, at(stat(user=300, idle=700), {1: 0}))  # others 60 %: 2.4x
    stall = activity(sample, at(stat(user=1, idle=999), {1: 1}), longest_stall_ns=50_000_000)  # 5x
    calm = activity(sample, at(stat(idle=1000), {1: 0}))
    assert host.worst([mild, stall, calm]) is stall and host.worst([calm]) is None


def test_the_thresholds_live_in_one_place():
    assert (host.STEAL_PCT, host.OTHERS_PCT, host.STALL_NS) == (2.0, 25.0, 10_000_000)
    assert PAUSE_NS[-1] == host.STALL_NS


def test_sample_reads_this_process_and_skips_a_pid_that_does_not_exist():
    found = host.sample([os.getpid(), 2**22 + 1])
    assert set(found.own) == {os.getpid()} and found.cpus >= 1 and found.cpu.total > 0


def test_environment_fields_are_present_and_plausible():
    env = host.environment(["rawpacer", "compare"])
    assert env["command"] == ["rawpacer", "compare"]
    assert env["kernel_release"] == platform.release() and env["kernel_version"] == os.uname().version
    assert env["cpu_count"] == os.cpu_count() and env["cpu_affinity"] == sorted(os.sched_getaffinity(0))
    assert isinstance(env["cpu_model"], str) and env["cpu_model"]
    assert env["clocksource"] and isinstance(env["timer_slack_ns"], int) and env["timer_slack_ns"] >= 0
    assert env["git_commit"] is None or len(str(env["git_commit"])) == 40
    assert env["git_dirty"] in (None, True, False)
    assert set(host.describe()) >= {"cpu", "cores", "kernel", "python"}
    assert "clocksource" in host.timing_line() and "timer slack" in host.timing_line()


def test_governor_joins_what_sysfs_shows(tmp_path):
    assert governor(tmp_path) is None
    for cpu, name in (("cpu0", "performance"), ("cpu1", "performance"), ("cpu2", "powersave")):
        (tmp_path / cpu / "cpufreq").mkdir(parents=True)
        (tmp_path / cpu / "cpufreq" / "scaling_governor").write_text(name + "\n")
    assert governor(tmp_path) == "performance/powersave"


def test_count_pauses_and_a_short_probe():
    assert count_pauses([60_000, 2_000_000, 30_000_000]) == {50_000: 3, 1_000_000: 2, 10_000_000: 1}
    probe = host.probe(0.02)
    assert probe.reads > 0 and set(probe.over_ns) == set(PAUSE_NS) and "stall probe" in probe.line()


SPOILED = activity(at(stat(), {1: 0}), at(stat(user=500, idle=500), {1: 0}))
QUIET = activity(at(stat(), {1: 0}), at(stat(idle=1000), {1: 0}))


def pass_sample(hostly: HostActivity | None, p50: float = 1e6, top: float = 2e6) -> Sample:
    return Sample(
        10,
        10**7,
        100,
        Counts(delivered=100, intact=100),
        150_000,
        op_ns_percentiles={"p50": p50, "max": top},
        host=hostly,
    )


def test_compare_json_carries_environment_and_each_pass_its_host():
    report = Report({"cpu": "Test CPU"}, {"mode": "fanout"}, environment={"clocksource": "tsc"})
    report.results = [WriterResult("udp-sendto", 100, 1500, 1500, samples=[pass_sample(QUIET), pass_sample(None)])]
    data = json.loads(to_json(report))
    assert data["environment"] == {"clocksource": "tsc"}
    hosts = [s["host"] for s in data["results"][0]["samples"]]
    assert hosts[0]["spoiled"] is False and hosts[0]["others_pct"] == 0.0 and hosts[1] is None


def test_the_longest_stall_of_a_pass_is_the_slowest_op_over_the_median_or_the_pacers_latest():
    assert pass_sample(None, 1e6, 13e6).longest_stall_ns == 12_000_000
    paced = Sample(1, 1, 1, Counts(1, 1), 1, pacing={"pacer": {"lateness_ns": {"max": 7}}})
    assert paced.longest_stall_ns == 7 and Sample(1, 1, 1, Counts(1, 1), 1).longest_stall_ns is None


def test_the_table_prints_one_warning_naming_the_spoiled_writers():
    report = Report({"cpu": "Test CPU"}, {"mode": "fanout"})
    report.results = [
        WriterResult("udp-sendto", 100, 1500, 1500, samples=[pass_sample(SPOILED), pass_sample(QUIET)]),
        WriterResult("xdp", 100, 1500, 1500, samples=[pass_sample(QUIET)]),
        WriterResult("packet-ring", 100, 1500, 1500, samples=[pass_sample(SPOILED)]),
    ]
    console = Console(file=io.StringIO(), width=250, color_system=None)
    print_report(report, console)
    lines = [line for line in console.file.getvalue().splitlines() if "figures may be the host's" in line]
    assert lines == [
        (
            "warning: figures may be the host's, not the path's: other processes 100 % of a CPU "
            "(passes of udp-sendto, packet-ring; see docs/trusting-a-figure.md)"
        )
    ]
    report.results = report.results[1:2]
    assert host_warning(report) is None


class Spoiling(SyntheticDevice):
    """A synthetic device whose back-to-back trials ran on a busy host."""

    def run(self, trial: Trial) -> TrialResult:
        result = super().run(trial)
        return dataclasses.replace(result, host=SPOILED if trial.test == "back-to-back" else QUIET)


def test_rfc2544_trials_carry_host_and_spoiled_and_the_tables_mark_them(tmp_path):
    conf = make_settings(sizes="64", trial="10ms", b2b_repeats=2, resolution="1%", tests="throughput,back-to-back")
    path = tmp_path / "run.json"
    run = new_run(conf, {"cpu": "Test CPU"})
    run.environment = {"clocksource": "tsc"}
    device = Spoiling(capacity_pps=400_000.0, writer_max_pps=1e6, buffer_frames=2000, seed=1)
    run_suite([device], conf, Recorder(run, path))
    data = json.loads(path.read_text())
    assert data["environment"] == {"clocksource": "tsc"}
    (entry,) = data["results"]
    assert entry["spoiled"] is True
    for trial in entry["trials"]:
        assert trial["spoiled"] is (trial["test"] == "back-to-back") and trial["host"] is not None
    again = Run.from_dict(data)
    assert again.environment == {"clocksource": "tsc"} and again.results[0].spoiled
    assert "H" not in throughput_grid(again).rows[0][1] and "H" not in throughput_grid(again).marks
    b2b = back_to_back_grid(again)
    assert b2b.rows[0][1].endswith("H") and any(line.startswith("H host-spoiled") for line in b2b.legend())
