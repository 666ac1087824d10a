"""The readers' VLAN filter on a real veth pair: the run's 802.1Q id is delivered intact (tag popped),
any other id is dropped and counted, untagged and priority-tagged frames pass; failures are one line."""

from __future__ import annotations

import errno
import os
import socket

import pytest
from helpers import inject, sandbox_frame, udp_family, vlan_tagged
from pyroute2 import IPRoute

from rawpacer.errors import SandboxError, UsageError
from rawpacer.kernel import bpf as kernel_bpf
from rawpacer.sandbox import Sandbox, VlanCounts, vlan, vlan_filter_support

ETH_P_8021AD = 0x88A8
UDP_OVERHEAD = {4: 28, 6: 48}  # IP + UDP headers
PORT = 5001


def bpf_fds() -> list[str]:
    """This process's open BPF maps and programs."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # the fd listdir itself had open
            continue
    return [link for link in links if link.startswith("anon_inode:bpf")]


def received(topo, frames: list[bytes]) -> list[bytes]:
    """Inject ``frames`` on the writer's veth end; the datagrams one reader on PORT got, in order."""
    with topo.enter("reader"):
        reader = socket.socket(udp_family(topo), socket.SOCK_DGRAM)
    with reader:
        reader.bind((topo.reader_ip, PORT))
        reader.settimeout(0.5)
        inject(topo, frames)
        got = []
        while True:
            try:
                got.append(reader.recv(65535))
            except TimeoutError:
                return got


@pytest.mark.parametrize(
    "ip_version, vlan_id, mtu", [(4, 1, 1500), (4, 4094, 9000), (6, 1, 1280), (6, 4094, 1500), (6, 100, 9000)]
)
def test_the_run_id_is_delivered_intact_other_ids_are_dropped_and_counted(ip_version, vlan_id, mtu):
    with Sandbox("veth", mtu=mtu, ip_version=ip_version, vlan=vlan_id) as topo:
        assert topo.vlan == vlan_id and topo.vlan_filter is not None
        size = mtu - UDP_OVERHEAD[ip_version]  # full-size frames: the tag does not count against the MTU

        def frame(label: bytes, full: bool = True) -> bytes:
            return sandbox_frame(topo, PORT, label + b"." * (size - len(label)) if full else label)

        other = vlan_id - 1 if vlan_id > 1 else vlan_id + 1
        cases = [
            (b"tagged-run-id", vlan_tagged(frame(b"tagged-run-id"), vlan_id), "accepted"),
            (b"tagged-priority-7", vlan_tagged(frame(b"tagged-priority-7"), vlan_id, priority=7), "accepted"),
            (b"other-id", vlan_tagged(frame(b"other-id"), other, priority=7), "other_vlan"),
            (b"reserved-4095", vlan_tagged(frame(b"reserved-4095"), 4095), "other_vlan"),
            # AF_PACKET allows the 4 bytes over the MTU only to an 802.1Q tag: the S-tagged frame is short
            (
                b"s-tag-run-id",
                vlan_tagged(frame(b"s-tag-run-id", full=False), vlan_id, tpid=ETH_P_8021AD),
                "other_vlan",
            ),
            (b"untagged", frame(b"untagged"), "untagged"),
            (b"priority-tag-vid-0", vlan_tagged(frame(b"priority-tag-vid-0"), 0, priority=5), "untagged"),
        ]
        before = topo.vlan_filter.counts()
        got = received(topo, [bytes_ for _, bytes_, _ in cases])
        after = topo.vlan_filter.counts()
    expected = [label for label, _, verdict in cases if verdict != "other_vlan"]
    assert [datagram.rstrip(b".") for datagram in got] == expected
    assert all(len(datagram) == size for datagram in got)
    moved = {name: getattr(after, name) - getattr(before, name) for name in vlan.COUNTERS}
    wanted = {name: sum(verdict == name for _, _, verdict in cases) for name in vlan.COUNTERS}
    assert (moved["accepted"], moved["other_vlan"]) == (wanted["accepted"], wanted["other_vlan"])
    # IPv6 links also carry the kernel's own untagged MLD reports in their first second or two
    assert moved["untagged"] == wanted["untagged"] if ip_version == 4 else moved["untagged"] >= wanted["untagged"]


def test_without_the_filter_the_stack_drops_every_non_zero_id():
    """The control: no 8021q here, so a tagged frame is another host's unless the filter pops its tag."""
    with Sandbox("veth") as topo:
        frames = [vlan_tagged(sandbox_frame(topo, PORT, b"id-%d" % vid), vid) for vid in (0, 5, 4094)]
        assert received(topo, frames) == [b"id-0"]


def test_counts_survive_the_sandbox_and_nothing_is_left_open():
    open_before = bpf_fds()
    with Sandbox("veth", vlan=7) as topo:
        assert len(bpf_fds()) == len(open_before) + 1  # the counter map; tc holds the program
        with topo.enter("reader"), IPRoute() as ipr:
            index = ipr.link_lookup(ifname=topo.reader_if)[0]
            (bpf_filter,) = [f for f in ipr.get_filters(index=index, parent=0xFFFFFFF2) if f.get_attr("TCA_OPTIONS")]
        options = bpf_filter.get_attr("TCA_OPTIONS")
        assert bpf_filter.get_attr("TCA_KIND") == "bpf" and options.get_attr("TCA_BPF_NAME") == vlan.NAME
        assert options.get_attr("TCA_BPF_FLAGS") & 1  # TCA_BPF_FLAG_ACT_DIRECT
        frames = [vlan_tagged(sandbox_frame(topo, PORT, b"x"), vid) for vid in (7, 7, 8)]
        assert received(topo, frames) == [b"x", b"x"]
        counts = topo.vlan_filter.counts()
        vlan_filter = topo.vlan_filter
    assert (counts.accepted, counts.other_vlan) == (2, 1)
    assert vlan_filter.counts() == counts
    assert counts.describe() == "1 frame tagged with another VLAN id was dropped"
    assert VlanCounts(0, 3, 0).describe() == "3 frames tagged with another VLAN id were dropped"
    assert bpf_fds() == open_before


def test_vlan_filter_support_says_yes_here():
    ok, why = vlan_filter_support()
    assert ok, why
    assert "instructions" in why and "\n" not in why


def _failing_prog_load(real):
    def fake(cmd, attr):
        if cmd == kernel_bpf.BPF_PROG_LOAD:
            raise OSError(errno.EPERM, "bpf(BPF_PROG_LOAD): Operation not permitted")
        return real(cmd, attr)

    return fake


def test_a_kernel_that_refuses_bpf_is_one_line_and_leaves_nothing(monkeypatch):
    open_before = bpf_fds()
    monkeypatch.setattr(kernel_bpf, "bpf", _failing_prog_load(kernel_bpf.bpf))
    with pytest.raises(SandboxError) as raised, Sandbox("veth", vlan=5):
        pass
    message = str(raised.value)
    assert message.startswith("cannot set up the VLAN filter: bpf(BPF_PROG_LOAD) failed")
    assert "needs root" in message and "\n" not in message
    assert vlan_filter_support() == (False, message)
    assert bpf_fds() == open_before


def test_the_verifiers_reason_reaches_the_one_line_error(monkeypatch):
    """A program the kernel's verifier rejects (no exit at the end) fails with the verifier's last word."""
    whole = vlan.program
    monkeypatch.setattr(vlan, "program", lambda vlan_id, map_fd: whole(vlan_id, map_fd)[:-1])
    with (
        pytest.raises(SandboxError, match=r"BPF_PROG_LOAD\) failed: .*\(verifier: .+\)$") as raised,
        Sandbox("veth", vlan=5),
    ):
        pass
    assert "\n" not in str(raised.value)


def test_a_kernel_without_clsact_is_one_line(monkeypatch):
    """A kernel without sch_ingress answers "unknown qdisc kind" (ENOENT) to clsact, as it does to this one."""
    monkeypatch.setattr(vlan, "QDISC", "clsact_absent")
    open_before = bpf_fds()
    words = "clsact_absent qdisc to rpr0 failed: .*CONFIG_NET_SCH_INGRESS"
    with pytest.raises(SandboxError, match=words) as raised, Sandbox("veth", vlan=5):
        pass
    assert "\n" not in str(raised.value)
    assert bpf_fds() == open_before


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"kind": "veth", "vlan": 0}, "vlan 0 is out of range 1-4094"),
        ({"kind": "veth", "vlan": 4095}, "vlan 4095 is out of range 1-4094"),
        ({"kind": "veth", "vlan": True}, "vlan True is out of range"),
        ({"kind": "veth", "vlan": "5"}, "vlan '5' is out of range"),
        ({"kind": "lo", "vlan": 5}, "vlan 5 needs the veth or router topology"),
    ],
)
def test_bad_vlan_input_is_one_clear_error(kwargs, words):
    with pytest.raises(UsageError, match=words) as raised:
        Sandbox(**kwargs)
    assert "\n" not in str(raised.value)
