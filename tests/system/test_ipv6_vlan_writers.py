"""Every writer over IPv6, and every link-header writer with 802.1Q tags, delivering real datagrams to
100 kernel readers in sandboxes; the tag's id filtered and counted at the readers' end; pcaps of
IPv6 and tagged frames read back and dissected as valid by scapy."""

from __future__ import annotations

import dataclasses
import os

import pytest
from helpers import fanouts, make_writer
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from rawpacer.errors import UsageError
from rawpacer.headers import parse_frame, reassemble
from rawpacer.pcap import read_pcap
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Sandbox
from rawpacer.writers import WriterOptions, get, names
from rawpacer.writers.base import Fit

WHERE = [("lo", None), ("veth", 1280), ("veth", 1500), ("veth", 9000)]
TAGGING = [n for n in names() if get(n).tags_vlan]


@pytest.mark.parametrize("fit", ["trim", "fragment"])
@pytest.mark.parametrize(("kind", "mtu"), WHERE, ids=[f"{k}{m or ''}" for k, m in WHERE])
def test_every_writer_delivers_intact_over_ipv6(kind, mtu, fit):
    size = 3000
    with Sandbox(kind, mtu=mtu, ip_version=6) as topo:
        limit = topo.mtu - 48  # IPv6 + UDP headers: what one datagram carries at this MTU
        for name in names():
            expected = size if fit == "fragment" or get(name).raw is False else min(size, limit)
            assert fanouts(topo, name, 100, 1, size=size, fit=Fit(fit)) == (expected, 100), name


def test_strict_refuses_what_does_not_fit_over_ipv6():
    with Sandbox("veth", mtu=1280, ip_version=6) as topo:
        for name in names(raw=True):
            with pytest.raises(
                UsageError, match="1500-byte messages need 1548-byte IPv6 datagrams but the link MTU is 1280"
            ):
                make_writer(topo, name, [5001], message_size=1500, fit=Fit.STRICT)


@pytest.mark.parametrize("ip_version", [4, 6])
@pytest.mark.parametrize("vlan", [1, 4094])
def test_tagged_frames_of_every_link_header_writer_reach_the_readers(vlan, ip_version):
    with Sandbox("veth", mtu=1500, ip_version=ip_version, vlan=vlan) as topo:
        for name in TAGGING:
            delivered, intact = fanouts(topo, name, 100, 1, size=1000, fit=Fit.FRAGMENT)
            assert (delivered, intact) == (1000, 100), name
        counts = topo.vlan_filter.counts() if topo.vlan_filter else None
        assert counts is not None and counts.accepted >= 100 * len(TAGGING) and counts.other_vlan == 0


def test_frames_tagged_with_another_id_are_dropped_and_counted():
    with Sandbox("veth", mtu=1500, vlan=7) as topo, ReaderSet(topo, 20, 500, timeout=0.3) as readers:
        target = dataclasses.replace(topo.target(readers.ports), vlan=8, vlan_priority=3)
        with topo.enter("writer"):
            writer = get("packet-raw")(target, WriterOptions(message_size=500))
        with writer:
            readers.begin()
            result = readers.wait(writer.send(readers.messages))
        counts = topo.vlan_filter.counts() if topo.vlan_filter else None
    assert (result.counts.delivered, result.counts.lost) == (0, 20)
    assert counts is not None and counts.other_vlan == 20 and counts.accepted == 0


@pytest.mark.parametrize("name", [n for n in names() if n not in TAGGING])
def test_writers_that_do_not_build_the_link_header_refuse_a_tag(name):
    with Sandbox("veth", mtu=1500, vlan=5) as topo, pytest.raises(UsageError, match=f"{name} cannot tag frames"):
        make_writer(topo, name, [5001])


@pytest.mark.parametrize(("ip_version", "vlan"), [(6, None), (4, 42), (6, 42)])
def test_pcaps_of_ipv6_and_tagged_frames_round_trip_and_dissect(ip_version, vlan, tmp_path):
    for name in TAGGING:
        path = str(tmp_path / f"{name}.pcap")
        sandbox = Sandbox("veth", mtu=1500, ip_version=ip_version, vlan=vlan)
        with sandbox as topo, make_writer(topo, name, [5001, 5002, 5003], message_size=1000, pcap=path) as writer:
            writer.send([os.urandom(1000) for _ in range(3)])
        frames = read_pcap(path)[1]
        assert len(frames) == 3, name
        for frame in frames:
            parsed = parse_frame(frame)
            assert parsed.checksums_ok and (parsed.ip_version, parsed.vlan) == (ip_version, vlan), name
            packet = Ether(frame)
            assert (Dot1Q in packet, IPv6 in packet) == (vlan is not None, ip_version == 6), name
            assert bytes(packet[UDP].payload) == parsed.payload


def test_ipv6_fragments_in_a_pcap_reassemble_into_the_message(tmp_path):
    path = str(tmp_path / "frag6.pcap")
    message = os.urandom(3000)
    with (
        Sandbox("veth", mtu=1280, ip_version=6, vlan=9) as topo,
        make_writer(topo, "packet-ring", [5001], message_size=3000, fit=Fit.FRAGMENT, pcap=path) as writer,
    ):
        writer.send([message])
    frames = read_pcap(path)[1]
    assert len(frames) == 3
    whole = parse_frame(reassemble(frames))
    assert whole.payload == message and whole.checksums_ok and whole.vlan == 9
