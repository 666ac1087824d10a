"""Two hosts and more, for real: namespaces standing for hosts, OpenSSH's sshd in each remote one,
the controller (``rawpacer compare/send/rfc2544 --remote``) in its own, the agent started by ssh.

Every test shares one rig (tests/sshhosts.py): the controller ``c`` and remotes ``r1`` and ``r2``,
each on its own veth link; the faults are staged on it (a refused login, a closed port, rawpacer
missing or too old over there, the agent killed and the link cut mid-run).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from helpers import wait_until
from sshhosts import ROOT, Hosts, agent_command

from rawpacer.remote.clock import OFFSET_ENV

BASE_COMMIT = "847d31d"
"""A rawpacer from before the agent existed: the 'too old' remote."""
PROTOCOL_1_COMMIT = "3345a3d"
"""A rawpacer whose agent speaks protocol 1 only (seed fills named 'key', results as JSON)."""


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    with Hosts(remotes=2) as rig:
        yield rig


def one_line(stderr: str) -> str:
    """stderr's only line (warnings about raw frames aside)."""
    lines = [line for line in stderr.splitlines() if "warning:" not in line]
    assert len(lines) == 1, stderr
    return lines[0]


def clock_of(stdout: str) -> list[tuple[float, float]]:
    """(offset µs, uncertainty µs) of every host line."""
    return [(float(a), float(b)) for a, b in re.findall(r"clock offset ([+-][\d.]+) µs ± ([\d.]+) µs", stdout)]


def nothing_left(hosts: Hosts) -> bool:
    """No agent, no ssh client of the rig, no reader process left anywhere."""
    ssh = subprocess.run(["pgrep", "-f", f"ssh -F {hosts.dir}"], capture_output=True, text=True, check=False)
    return not hosts.agents() and not ssh.stdout.strip()


def test_send_across_delivers_every_datagram_and_says_which_host_got_what(hosts):
    done = hosts.run("send", "--writer", "udp-sendmmsg", "--remote", hosts.addr(1), "--readers", "50", "--ops", "4")
    assert done.returncode == 0, done.stderr
    assert "200 of 200 datagrams delivered, 200 intact" in done.stdout
    assert (
        f"{hosts.addr(1)} ({hosts.addr(1)}): 50 readers, ports 5001-5050, 200 of 200 delivered, 200 intact"
        in done.stdout
    )
    assert nothing_left(hosts)


def test_compare_across_counts_as_a_local_run_and_a_raw_writer_leaves_by_tx_iface(hosts, tmp_path):
    args = ["compare", "--writers", "udp-sendmmsg,packet-raw", "--readers", "100", "--benchtime", "30x"]
    remote = hosts.run(
        *args, "--remote", hosts.addr(1), "--tx-iface", f"{hosts.tag}c1", "--json", str(tmp_path / "r.json")
    )
    assert remote.returncode == 0, remote.stderr
    local = subprocess.run(
        [sys.executable, "-m", "rawpacer.cli", *args, "--topology", "veth", "--json", str(tmp_path / "l.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    rows = {r["writer"]: r for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    here = {r["writer"]: r for r in json.loads((tmp_path / "l.json").read_text())["results"]}
    for name in ("udp-sendmmsg", "packet-raw"):
        sample, mine = rows[name]["samples"][0], here[name]["samples"][0]
        counts = {k: sample[k] for k in ("sent", "delivered", "intact", "lost", "corrupt")}
        assert counts == {k: mine[k] for k in counts}, (name, counts)
        assert sample["sent"] == sample["delivered"] == sample["intact"] > 0
        (share,) = rows[name]["hosts"]  # the pass's ops, calibration included, on the one host
        assert (share["host"], share["addr"], share["readers"]) == (hosts.addr(1), hosts.addr(1), 100)
        assert share["intact"] == share["expected"] >= sample["intact"]
    params = json.loads((tmp_path / "r.json").read_text())["params"]
    assert (params["topology"], params["remote"]) == ("remote", [hosts.addr(1)])


def test_rfc2544_across_counts_every_trial(hosts, tmp_path):
    out = tmp_path / "r.json"
    done = hosts.run(
        "rfc2544", "--writers", "udp-sendmmsg", "--remote", hosts.addr(1), "--readers", "10", "--sizes", "64",
        "--tests", "throughput,latency", "--trial", "0.2s", "--json", str(out),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    run = json.loads(out.read_text())
    assert run["params"]["remote"] == [hosts.addr(1)]
    trials = run["results"][0]["trials"]
    assert trials and all(t["sent"] == t["delivered"] == t["intact"] for t in trials)
    for trial in (t for t in trials if t["test"] == "latency"):  # one clock, a few µs of veth: below the bound
        assert any("no one-way latency: the clock offset's uncertainty" in n for n in trial["notes"]), trial["notes"]


def test_a_paced_send_across_is_measured_from_the_remotes_kernel_timestamps(hosts):
    done = hosts.run(
        "send", "--writer", "udp-sendmmsg", "--remote", hosts.addr(1), "--readers", "50", "--ops", "2", "--rate", "20k"
    )
    assert done.returncode == 0, done.stderr
    rates = [float(r.replace(",", "")) for r in re.findall(r"paced at ([\d,]+) of 20,000 datagrams/s", done.stdout)]
    assert len(rates) == 2 and all(r > 0 for r in rates), done.stdout


def test_two_hosts_share_the_readers_by_weight_and_merge_per_host_and_in_total(hosts):
    spec = f"{hosts.addr(1)},{hosts.addr(2)}=3"
    done = hosts.run("send", "--writer", "udp-sendmmsg", "--remote", spec, "--readers", "8", "--ops", "3")
    assert done.returncode == 0, done.stderr
    assert "24 of 24 datagrams delivered, 24 intact" in done.stdout
    assert f"{hosts.addr(1)} ({hosts.addr(1)}): 2 readers, ports 5001-5002, 6 of 6 delivered, 6 intact" in done.stdout
    assert (
        f"{hosts.addr(2)} ({hosts.addr(2)}): 6 readers, ports 5003-5008, 18 of 18 delivered, 18 intact" in done.stdout
    )


def test_ten_thousand_readers_split_over_two_hosts_get_every_datagram_intact(hosts):
    spec = f"{hosts.addr(1)},{hosts.addr(2)}"
    done = hosts.run("send", "--writer", "udp-sendmmsg", "--remote", spec, "--readers", "10000", "--ops", "2")
    assert done.returncode == 0, done.stderr
    assert "20000 of 20000 datagrams delivered, 20000 intact" in done.stdout
    assert done.stdout.count("5000 readers") == 2


def test_the_same_clock_measures_near_zero_and_an_injected_offset_is_found(hosts):
    args = ["send", "--writer", "udp-sendmmsg", "--remote", hosts.addr(1), "--readers", "10", "--ops", "5"]
    same = hosts.run(*args)
    assert same.returncode == 0, same.stderr
    ((offset, bound),) = clock_of(same.stdout)
    assert abs(offset) <= bound  # the truth (0) lies within the bound
    skewed = hosts.run(*args, env=hosts.env({OFFSET_ENV: "5000000"}))
    assert skewed.returncode == 0, skewed.stderr
    ((offset, bound),) = clock_of(skewed.stdout)
    assert abs(offset - 5000.0) <= bound
    # corrected: not the 5 ms the skew adds; reported, or withheld when the offset's bound exceeds it
    latency = re.search(r"one-way latency ([\d.]+) µs|larger than the figure \(([\d.]+) µs\)", skewed.stdout)
    assert latency is not None and float(latency[1] or latency[2]) < 2500.0, skewed.stdout


def test_remote_addr_that_is_not_the_remotes_is_one_line_exit_2(hosts):
    done = hosts.run("send", "--writer", "udp-sendmmsg", "--remote", hosts.addr(1), "--remote-addr", hosts.addr(2))
    assert done.returncode == 2, done.stderr
    assert f"--remote-addr '{hosts.addr(2)}' is not an address of" in one_line(done.stderr)
    assert nothing_left(hosts)


def test_a_refused_login_is_one_line(hosts, tmp_path):
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text((hosts.dir / "ssh_config").read_text().replace(str(hosts.dir / "client_key"), str(key)))
    env = dict(hosts.env(), RAWPACER_SSH_COMMAND=f"ssh -F {config}")
    done = hosts.run("send", "--writer", "udp-sendmmsg", "--remote", hosts.addr(1), env=env)
    assert done.returncode == 1
    assert f"ssh to {hosts.addr(1)} failed authentication" in one_line(done.stderr)


def test_a_closed_port_is_one_line(hosts):
    done = hosts.run("send", "--writer", "udp-sendmmsg", "--remote", f"{hosts.addr(1)}:2222")
    assert done.returncode == 1
    assert f"ssh to {hosts.addr(1)}:2222 could not connect" in one_line(done.stderr)


def test_rawpacer_missing_on_the_remote_says_what_to_install(hosts):
    env = dict(hosts.env(), RAWPACER_REMOTE_COMMAND="env -u PYTHONPATH /usr/bin/python3 -m rawpacer.cli agent --stdio")
    done = hosts.run("send", "--writer", "udp-sendmmsg", "--remote", hosts.addr(1), env=env)
    assert done.returncode == 1
    assert f"rawpacer is not installed on {hosts.addr(1)}; install it there: pip install rawpacer" in one_line(
        done.stderr
    )


def test_a_rawpacer_too_old_for_the_agent_says_what_to_install(hosts, tmp_path):
    command = release(BASE_COMMIT, tmp_path)
    done = hosts.run(
        "send",
        "--writer",
        "udp-sendmmsg",
        "--remote",
        hosts.addr(1),
        env=dict(hosts.env(), RAWPACER_REMOTE_COMMAND=command),
    )
    assert done.returncode == 1
    assert f"rawpacer on {hosts.addr(1)} is too old (it has no agent command)" in one_line(done.stderr)


def _mid_run(hosts: Hosts, stage: str) -> subprocess.CompletedProcess[str]:
    """A long send across; once ops are flowing, ``stage`` the fault; the controller's end."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", hosts.controller, sys.executable, "-m", "rawpacer.cli", "send", "--writer",
         "udp-sendmmsg", "--remote", hosts.addr(1), "--readers", "20", "--ops", "100000"],
        env=dict(hosts.env(), PYTHONUNBUFFERED="1"), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printed once the readers are open over there
        assert first.startswith("send: "), first + process.stderr.read() if process.stderr else first
        time.sleep(1.0)  # ops flowing
        if stage == "kill":
            for pid in hosts.agents():
                subprocess.run(["kill", "-KILL", str(pid)], check=False)
        elif stage == "controller":
            process.kill()  # ip netns exec execs the controller: this is its pid
        else:
            subprocess.run(["ip", "-n", hosts.ns(1), "link", "set", f"{hosts.tag}r1", "down"], check=True)
        out, err = process.communicate(timeout=60)
        return subprocess.CompletedProcess(process.args, process.returncode, first + out, err)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        subprocess.run(["ip", "-n", hosts.ns(1), "link", "set", f"{hosts.tag}r1", "up"], check=False)


def test_the_agent_killed_mid_run_ends_the_run_in_one_line_keeping_what_was_delivered(hosts):
    done = _mid_run(hosts, "kill")
    assert done.returncode == 1, done.stderr
    assert f"the agent on {hosts.addr(1)}" in one_line(done.stderr)
    kept = re.search(r"before the readers went away: (\d+) ops, (\d+) of (\d+) delivered", done.stdout)
    assert kept is not None and int(kept[1]) > 0 and int(kept[2]) > 0, done.stdout
    assert wait_until(lambda: nothing_left(hosts), timeout=20)


def test_the_link_cut_mid_run_ends_the_run_in_one_line_and_the_agent_leaves(hosts):
    done = _mid_run(hosts, "cut")
    assert done.returncode == 1, done.stderr
    assert hosts.addr(1) in one_line(done.stderr)
    assert "before the readers went away:" in done.stdout
    assert wait_until(lambda: nothing_left(hosts), timeout=30)


CHAIN = """
import json
from rawpacer.bench import rig
from rawpacer.bench.config import make_config
from rawpacer.bench.oploop import OpLoop
from rawpacer.writers import WriterOptions, get
config = make_config(writers="udp-sendmmsg", remote="{spec}", readers=20, size=200, payload="{payload}")
counts = []
with rig.sandbox(config) as topo, rig.readers(config, topo, 20) as readers:
    writer = rig.open_writer(config, topo, readers, get("udp-sendmmsg"), WriterOptions(200))
    loop = OpLoop(writer, readers, rig.source(config, readers))
    for round in range(3):
        results = [o.result for o in loop.fanouts(30)]
        counts.append([sum(r.counts.intact for r in results), sum(r.counts.lost for r in results), sum(r.counts.corrupt for r in results)])
        if round == 0:
            readers.close_port(readers.ports[-1])  # a prearmed op is open: drained first; then one loss an op
    print(json.dumps(counts))
"""


@pytest.mark.parametrize("payload", ["crypto", "fast"])  # both cross the wire as seeds, each op's made there
def test_prearmed_ops_over_two_hosts_count_like_explicit_ones_through_a_loss(hosts, payload):
    spec = f"{hosts.addr(1)},{hosts.addr(2)}"
    done = subprocess.run(
        ["ip", "netns", "exec", hosts.controller, sys.executable, "-c", CHAIN.format(spec=spec, payload=payload)],
        env=hosts.env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    intact_all, one_lost, again = json.loads(done.stdout)
    assert intact_all == [600, 0, 0]
    assert one_lost == again == [570, 30, 0]  # the closed port loses its datagram each op, nothing else


def test_the_controller_killed_leaves_nothing_running_on_either_side(hosts):
    done = _mid_run(hosts, "controller")
    assert done.returncode == -9
    assert wait_until(lambda: nothing_left(hosts), timeout=20)  # ssh saw its input end, the agent its input


def release(commit: str, where) -> str:
    """The agent command of rawpacer as it was at ``commit``, unpacked under ``where``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "rawpacer"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return agent_command().replace(f"PYTHONPATH={ROOT}", f"PYTHONPATH={where}")


def test_doctor_checks_each_remote_a_line_a_check_and_names_the_one_unreachable(hosts):
    done = subprocess.run(
        ["ip", "netns", "exec", hosts.controller, str(ROOT / "sudo-run.sh"), "doctor",
         "--remote", f"{hosts.addr(1)},{hosts.addr(2)}", "--remote", f"{hosts.addr(1)}:2222"],
        env=hosts.env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    for addr in (hosts.addr(1), hosts.addr(2)):
        mine = [line.split()[2:4] for line in lines if line.startswith(f"remote {addr} ")]
        assert mine == [["ssh", "OK"], ["agent", "OK"], ["clock", "OK"], ["readers", "OK"]], done.stdout
        assert f"a reader bound on {addr} port" in done.stdout
        offset, bound = clock_of(next(line for line in lines if line.startswith(f"remote {addr} clock")))[0]
        assert abs(offset) <= bound  # one clock: zero lies within the bound
    closed = [line for line in lines if line.startswith(f"remote {hosts.addr(1)}:2222 ")]
    assert len(closed) == 1 and "ssh      FAIL  ssh to" in closed[0] and "could not connect" in closed[0]
    assert lines[-1] == "8/9 remote checks passed; 1 failed"


def test_doctor_says_when_the_remotes_rawpacer_is_missing_or_speaks_an_older_protocol(hosts, tmp_path):
    missing = "env -u PYTHONPATH /usr/bin/python3 -m rawpacer.cli agent --stdio"
    for command, says in (
        (missing, f"rawpacer is not installed on {hosts.addr(1)}; install it there"),
        (release(PROTOCOL_1_COMMIT, tmp_path), "speaks versions 1-1, this side 2-2; install the same rawpacer release"),
    ):
        done = hosts.run("doctor", "--remote", hosts.addr(1), env=dict(hosts.env(), RAWPACER_REMOTE_COMMAND=command))
        assert done.returncode == 1, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith(f"remote {hosts.addr(1)} ssh      OK"), done.stdout
        assert lines[1].startswith(f"remote {hosts.addr(1)} agent    FAIL") and says in lines[1], done.stdout
        assert lines[-1] == "1/2 remote checks passed; 1 failed"
