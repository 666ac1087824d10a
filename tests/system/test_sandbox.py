"""The sandbox: real namespaces, real links, removed on every way out, host untouched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import udp_roundtrip

from rawpacer.errors import SandboxError, UsageError
from rawpacer.sandbox import READER_IP, WRITER_IP, Sandbox, owned, pid_namespaces, remove_stale
from rawpacer.sandbox.topology import RAW_PATH_SYSCTLS, read_sysctl


@pytest.mark.parametrize("kind", ["lo", "veth"])
def test_udp_crosses_the_sandbox_and_it_is_removed(kind):
    with Sandbox(kind) as topo:
        assert udp_roundtrip(topo, 1500) == b"r" * 1500
        assert set(topo.namespaces) <= set(pid_namespaces())
        assert (topo.ip_version, topo.vlan, topo.vlan_filter) == (4, None, None)
    assert not set(topo.namespaces) & set(owned())


def test_veth_link_facts_come_from_the_kernel():
    with Sandbox("veth", mtu=9000) as topo:
        link = topo.link()
        assert (topo.writer_ip, topo.reader_ip) == (WRITER_IP, READER_IP)
        assert link.ifname == "rpw0" and link.mtu == 9000 and link.ifindex > 0
        with topo.enter("reader"):
            reader_mac = Path("/proc/net/arp").read_text()  # the writer's MAC is pinned on the reader side
        assert link.src_mac in reader_mac
        assert link.src_mac != link.dst_mac and link.dst_mac != "00:00:00:00:00:00"


def test_lo_link_has_zero_macs_and_raw_sysctls_only_inside():
    host = {key: read_sysctl(key) for key in RAW_PATH_SYSCTLS}
    with Sandbox("lo") as topo:
        link = topo.link()
        assert link.src_mac == link.dst_mac == "00:00:00:00:00:00"
        assert link.mtu == 65536
        assert set(topo.sysctls().values()) == {"1"}
        assert {key: read_sysctl(key) for key in RAW_PATH_SYSCTLS} == host
    assert {key: read_sysctl(key) for key in RAW_PATH_SYSCTLS} == host


def test_entering_restores_the_thread_namespace_after_an_error():
    home = os.readlink("/proc/thread-self/ns/net")
    with Sandbox("lo") as topo:
        with pytest.raises(RuntimeError), topo.enter("writer"):
            assert os.readlink("/proc/thread-self/ns/net") != home
            raise RuntimeError("boom")
        assert os.readlink("/proc/thread-self/ns/net") == home


def test_namespaces_removed_when_the_body_raises():
    with pytest.raises(RuntimeError), Sandbox("veth") as topo:
        names = topo.namespaces
        raise RuntimeError("boom")
    assert not set(names) & set(owned())


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"kind": "ring"}, "topology 'ring'"),
        ({"kind": "veth", "mtu": 67}, "mtu 67"),
        ({"kind": "veth", "mtu": 70000}, "mtu 70000"),
    ],
)
def test_bad_input_is_one_clear_error(kwargs, words):
    with pytest.raises(UsageError, match=words):
        Sandbox(**kwargs)


def test_entering_a_missing_namespace_is_a_sandbox_error():
    from rawpacer.sandbox.netns import entered

    with pytest.raises(SandboxError, match="does not exist"), entered("rawpacer-0-missing"):
        pass


@pytest.mark.parametrize("own_handler", [False, True], ids=["default SIGTERM", "the script's SIGTERM handler"])
def test_sigint_and_sigterm_in_a_real_process_remove_its_namespaces(own_handler):
    # a script with no handler of its own (a benchmark, a notebook's kernel) is cleaned up on a kill too;
    # one with its own keeps it, and its SIGTERM goes back to the default once the sandboxes are gone
    script = textwrap.dedent(
        f"""
        import signal, sys, time
        from rawpacer.sandbox import Sandbox
        if {own_handler}:
            signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
        with Sandbox("lo"):
            pass
        assert (signal.getsignal(signal.SIGTERM) == signal.SIG_DFL) != {own_handler}
        with Sandbox("veth") as topo, Sandbox("lo") as inner:
            print(" ".join(topo.namespaces + inner.namespaces), flush=True)
            time.sleep(60)
        """
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        names = proc.stdout.readline().split()
        assert len(names) == 3 and set(names) <= set(owned(proc.pid))
        proc.send_signal(sig)
        assert proc.wait(timeout=10) != 0
        assert owned(proc.pid) == []


def test_remove_stale_takes_only_dead_processes_namespaces():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os; from rawpacer.sandbox import netns; netns.create(netns.new_run_id() + '-lo'); os._exit(0)",
        ]
    )
    proc.wait(timeout=10)
    assert len(owned(proc.pid)) == 1
    with Sandbox("lo") as topo:
        removed = remove_stale()
        assert owned(proc.pid) == [] and any(str(proc.pid) in n for n in removed)
        assert topo.writer_ns in owned()


def test_owned_namespace_is_recognised_by_inode_not_name():
    from rawpacer.sandbox import current_is_owned

    assert not current_is_owned()
    with Sandbox("lo") as topo, topo.enter("writer"):
        assert current_is_owned()
    assert not current_is_owned()


def test_raw_writers_are_refused_on_the_host_unless_the_interface_is_named():
    from rawpacer.errors import SandboxError
    from rawpacer.target import Link
    from rawpacer.writers._raw import check_raw_allowed
    from rawpacer.writers.base import WriterOptions

    host_lo = Link("lo", 1, 65536, "00:00:00:00:00:00", "00:00:00:00:00:00")
    with pytest.raises(SandboxError, match="--iface lo"):
        check_raw_allowed(host_lo, WriterOptions())
    with pytest.warns(UserWarning, match="outside rawpacer's namespaces"):
        check_raw_allowed(host_lo, WriterOptions(allow_iface="lo"))
    with Sandbox("lo") as topo, topo.enter("writer"):
        check_raw_allowed(topo.link(), WriterOptions())


def test_sandbox_works_inside_a_running_event_loop_like_a_notebook_cell():
    import asyncio

    async def cell():
        with Sandbox("veth") as topo:
            return udp_roundtrip(topo, 100), topo.link().mtu

    assert asyncio.run(cell()) == (b"r" * 100, 1500)
