"""Hard to misuse, never a mess: privileges, bad links, signals, dying readers, concurrent runs."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from helpers import RAW_WRITERS, cli, cli_process, interrupt, make_writer, wait_until
from pyroute2 import IPRoute

from rawpacer.errors import SandboxError, UsageError
from rawpacer.sandbox import Sandbox, owned, pid_namespaces
from rawpacer.writers import Link, WriterOptions, get
from rawpacer.writers.packet_ring import RingKnobs
from rawpacer.writers.udp_concurrent import PoolKnobs


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except FileNotFoundError:
        return []


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] == "Z"
    except FileNotFoundError:
        return True


# --- CLI bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, named",
    [
        (["doctor", "--writer", "warp"], "writer 'warp'"),
        (["compare", "--mode", "burst"], "mode 'burst'"),
        (["compare", "--payload", "zeros"], "payload 'zeros'"),
        (["compare", "--count", "0"], "count 0"),
        (["compare", "--fit", "squeeze"], "fit 'squeeze'"),
        (["compare", "--format", "csv"], "format 'csv'"),
        (["compare", "--json", "/nonexistent-dir/x.json"], "--json"),
        (["compare", "--writers", "udp-sendto,udp-sendto"], "names a writer twice"),
    ],
)
def test_every_bad_value_is_one_line_exit_2(args, named):
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_debug_flag_shows_the_traceback():
    done = cli("--debug", "compare", "--mode", "burst")
    assert done.returncode == 2 and "Traceback" in done.stderr and "mode 'burst'" in done.stderr


# --- links checked before anything is sent ----------------------------------------------------


def _rx_packets(topo) -> int:
    with topo.enter("reader"), IPRoute() as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=topo.reader_if)[0])[0]
        return link.get_attr("IFLA_STATS64")["rx_packets"]


@pytest.mark.parametrize("writer", RAW_WRITERS)
def test_missing_or_down_interface_is_refused_before_sending(writer):
    with Sandbox("veth") as topo:
        link = topo.link()
        before = _rx_packets(topo)
        missing = Link("rpx9", 99, 1500, link.src_mac, link.dst_mac)
        target = topo.target([5001])
        with topo.enter("writer"):
            with pytest.raises(SandboxError, match="'rpx9' does not exist"):
                get(writer)(type(target)(target.src_ip, target.dst_ip, (5001,), missing), WriterOptions())
            with IPRoute() as ipr:
                ipr.link("set", index=link.ifindex, state="down")
            with pytest.raises(SandboxError, match="'rpw0' is down"):
                get(writer)(target, WriterOptions())
        assert _rx_packets(topo) == before


def test_an_mtu_that_cannot_carry_the_headers_is_refused():
    with Sandbox("lo") as topo:
        target = topo.target([5001])
        tiny = Link(target.link.ifname, target.link.ifindex, 60, target.link.src_mac, target.link.dst_mac)
        with topo.enter("writer"), pytest.raises(UsageError, match="MTU 60, which cannot carry"):
            get("packet-raw")(type(target)(target.src_ip, target.dst_ip, (5001,), tiny), WriterOptions())


# --- faults and signals -----------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("when", ["setting-up", "mid-run"])
def test_signal_at_any_point_leaves_nothing_behind(sig, when):
    args = ("compare", "--writers", "udp-sendto,packet-ring,udp-sendmmsg", "--readers", "50", "--benchtime", "1s")
    with cli_process(*args) as process:
        if when == "mid-run":
            line = process.stderr.readline()
            assert line.startswith("done udp-sendto"), line
        else:
            wait_until(lambda: pid_namespaces(process.pid), timeout=10, step=0.005)
        children = _children(process.pid)
        _, err = interrupt(process, sig)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert pid_namespaces(process.pid) == []
    assert all(_gone(child) for child in children)


def test_a_reader_process_killed_mid_run_stops_the_run_with_an_error():
    with cli_process(
        "compare", "--writers", "udp-sendto,udp-sendmmsg", "--readers", "20", "--benchtime", "2s"
    ) as process:
        line = process.stderr.readline()
        assert line.startswith("done udp-sendto"), line
        readers = _children(process.pid)
        assert readers, "compare should have forked its reader process"
        for pid in readers:
            os.kill(pid, signal.SIGKILL)
        _, err = process.communicate(timeout=60)
    assert process.returncode not in (0, 2), err
    assert "reader process" in err and "Traceback" not in err
    assert pid_namespaces(process.pid) == []


def test_two_compare_runs_at_once_do_not_collide(tmp_path):
    args = ("compare", "--writers", "udp-sendmmsg,packet-ring", "--readers", "30", "--benchtime", "300ms", "--json")
    with (
        cli_process(*args, str(tmp_path / "run0.json")) as first,
        cli_process(*args, str(tmp_path / "run1.json")) as second,
    ):
        runs = [first, second]
        for run in runs:
            _, err = run.communicate(timeout=120)
            assert run.returncode == 0, err
    for i in range(2):
        results = json.loads((tmp_path / f"run{i}.json").read_text())["results"]
        assert {r["writer"] for r in results} == {"udp-sendmmsg", "packet-ring"}
        for row in results:
            assert row["sent"] > 0 and row["sent"] == row["delivered"] == row["intact"], row
    assert not any(pid_namespaces(run.pid) for run in runs)
    assert not [n for n in owned() if any(str(run.pid) in n for run in runs)]


@pytest.mark.parametrize(
    "make, named",
    [
        (lambda: RingKnobs(frames=-1), "ring frames -1"),
        (lambda: PoolKnobs(threads=1.5), "threads 1.5"),
        (lambda: WriterOptions(message_size=65508), "message_size 65508"),
        (lambda: WriterOptions(fit="squeeze"), "fit 'squeeze'"),
    ],
)
def test_writer_options_and_knobs_are_checked_where_they_are_made(make, named):
    with pytest.raises(UsageError, match=named):
        make()


def test_a_writer_refuses_another_writers_knobs():
    with Sandbox("lo") as topo, pytest.raises(UsageError, match="not packet-ring's knobs; use RingKnobs"):
        make_writer(topo, "packet-ring", [5001], PoolKnobs(threads=2))


def test_writer_options_accept_a_fit_by_name():
    from rawpacer.writers import Fit

    assert WriterOptions(fit="fragment").fit is Fit.FRAGMENT


# --- rawpacer send --------------------------------------------------------------------------


def test_send_checks_every_datagram_in_a_sandbox():
    done = cli("send", "--writer", "packet-raw", "--readers", "5", "--ops", "3")
    assert done.returncode == 0, done.stderr
    assert "15 of 15 datagrams delivered, 15 intact" in done.stdout


def test_send_across_a_small_mtu_fragments_and_delivers():
    done = cli("send", "--topology", "veth", "--mtu", "576", "--fit", "fragment", "--readers", "3")
    assert done.returncode == 0, done.stderr
    assert "3 of 3 datagrams delivered, 3 intact (1500 bytes each" in done.stdout


@pytest.mark.parametrize(
    "args, named",
    [
        (["send", "--writer", "udp-sendto", "--iface", "x"], "--iface is for raw writers"),
        (["send", "--iface", "x", "--dst-ip", "198.18.0.2"], "--iface needs --src-ip"),
        (
            ["send", "--iface", "x", "--src-ip", "198.18.0.1", "--dst-ip", "nope", "--dst-mac", "02:00:00:00:00:02"],
            "dst_ip 'nope'",
        ),
        (["send", "--dst-ip", "198.18.0.2"], "go with --iface"),
        (["send", "--ops", "0"], "ops 0"),
    ],
)
def test_send_bad_input_is_one_line_exit_2(args, named):
    done = cli(*args)
    assert done.returncode == 2 and named in done.stderr and "Traceback" not in done.stderr


def test_send_outside_rawpacer_namespaces_warns_naming_the_interface_and_sends_nothing_on_a_down_link():
    """--iface in a namespace this test made (not rawpacer's): a warning, then refused before sending."""
    from pyroute2 import netns as pyroute2_netns

    from rawpacer.sandbox.netns import entered

    name = f"rptest-foreign-{os.getpid()}"
    pyroute2_netns.create(name)
    try:
        with entered(name), IPRoute() as ipr:
            ipr.link("add", ifname="dummy7", kind="veth", peer="dummy8")  # both ends start down
            index = ipr.link_lookup(ifname="dummy7")[0]
        done = cli(
            "send",
            "--iface",
            "dummy7",
            "--src-ip",
            "198.18.0.1",
            "--dst-ip",
            "198.18.0.2",
            "--dst-mac",
            "02:00:00:00:00:02",
            prefix=["ip", "netns", "exec", name],
            cwd=Path("/"),
        )
        with entered(name), IPRoute() as ipr:
            sent = ipr.get_links(index)[0].get_attr("IFLA_STATS64")["tx_packets"]
    finally:
        pyroute2_netns.remove(name)
    assert "warning" in done.stderr and "'dummy7', outside rawpacer's namespaces" in done.stderr
    assert done.returncode == 1 and "'dummy7' is down: nothing was sent" in done.stderr
    assert sent == 0
