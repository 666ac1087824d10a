"""The router topology: writer, DUT and readers in three namespaces, forwarding only in the DUT's."""

from __future__ import annotations

import socket

import pytest
from helpers import RAW_WRITERS, STANDARD_WRITERS, fanouts

from rawpacer.errors import UsageError
from rawpacer.sandbox import Sandbox, owned
from rawpacer.sandbox.topology import ROUTER_ADDRESSING, ROUTER_SYSCTLS, link_info, read_sysctl

IP_RECVTTL = 12  # include/uapi/linux/in.h; Python's socket module lacks it


def _ttl_seen(topo, ip_version: int) -> int:
    """The TTL / hop limit a datagram from the writer arrives with at the readers (IP_RECVTTL / IPV6_RECVHOPLIMIT)."""
    family = socket.AF_INET if ip_version == 4 else socket.AF_INET6
    with topo.enter("reader"):
        reader = socket.socket(family, socket.SOCK_DGRAM)
    with reader:
        if ip_version == 4:
            reader.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        else:
            reader.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        reader.bind((topo.reader_ip, 0))
        reader.settimeout(5)
        with topo.enter("writer"), socket.socket(family, socket.SOCK_DGRAM) as writer:
            writer.setsockopt(
                *(
                    (socket.IPPROTO_IP, socket.IP_TTL)
                    if ip_version == 4
                    else (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)
                ),
                9,
            )
            writer.sendto(b"ttl", (topo.reader_ip, reader.getsockname()[1]))
        data, ancillary, _, _ = reader.recvmsg(16, socket.CMSG_SPACE(4))
        assert data == b"ttl"
        return int.from_bytes(ancillary[0][2][:4], "little")


@pytest.mark.parametrize("ip_version", [4, 6])
def test_the_dut_forwards_and_decrements_the_ttl(ip_version):
    with Sandbox("router", ip_version=ip_version) as topo:
        plan = ROUTER_ADDRESSING[ip_version]
        assert (topo.writer_ip, topo.reader_ip, topo.dut_in, topo.dut_out) == (plan.writer, plan.reader, "rpd0", "rpd1")
        assert _ttl_seen(topo, ip_version) == 8
        assert len(topo.namespaces) == 3
    assert not set(topo.namespaces) & set(owned())


def test_forwarding_is_on_in_the_dut_only():
    host = {key: read_sysctl(key) for key in ROUTER_SYSCTLS}
    with Sandbox("router") as topo:
        for side in ("writer", "reader"):
            with topo.enter(side):
                assert {read_sysctl(key) for key in ROUTER_SYSCTLS} == {"0"}
        with topo.enter("dut"):
            assert {read_sysctl(key) for key in ROUTER_SYSCTLS} == {"1"}
        assert {key: read_sysctl(key) for key in ROUTER_SYSCTLS} == host


def test_raw_frames_go_to_the_duts_ingress_mac_and_mtus_are_set():
    with Sandbox("router", mtu=9000, egress_mtu=1500) as topo:
        link = topo.link()
        with topo.enter("dut"):
            assert link.dst_mac == link_info("rpd0")[2]
            assert (link_info("rpd0")[1], link_info("rpd1")[1]) == (9000, 1500)
        with topo.enter("reader"):
            assert link_info("rpr0")[1] == 1500
        assert (link.mtu, topo.mtu, topo.egress_mtu) == (9000, 9000, 1500)


@pytest.mark.parametrize("name", STANDARD_WRITERS + RAW_WRITERS)
def test_every_writer_crosses_the_router_intact(name):
    with Sandbox("router") as topo:
        _, intact = fanouts(topo, name, 10, 2)
        assert intact == 20


def test_ipv6_and_vlan_cross_the_router():
    with Sandbox("router", ip_version=6, vlan=7) as topo:
        _, intact = fanouts(topo, "packet-ring", 10, 2)
        assert intact == 20
        assert topo.vlan_filter is not None and topo.vlan_filter.counts().accepted >= 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "veth", "egress_mtu": 1280}, "egress mtu 1280 needs the router topology"),
        ({"kind": "router", "mtu": 1400, "egress_mtu": 1500}, "egress mtu 1500 is above the links' mtu 1400"),
        ({"kind": "router", "egress_mtu": 9000}, "egress mtu 9000 is above the links' mtu 1500"),
        ({"kind": "router", "egress_mtu": 1000, "ip_version": 6}, "egress mtu 1000 is below IPv6's minimum"),
    ],
)
def test_bad_router_input_is_one_clear_error(kwargs, message):
    with pytest.raises(UsageError, match=message):
        Sandbox(**kwargs)


def test_a_side_the_topology_lacks_is_refused():
    with Sandbox("veth") as topo, pytest.raises(UsageError, match="side 'dut' is not allowed in the veth topology"):
        topo.enter("dut")
