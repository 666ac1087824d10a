"""IPv6 in the sandbox: 2001:2::/48 addresses without DAD, pinned ND entries, IPv6 on only inside,
and what the kernel does with IPv6 frames injected with AF_PACKET (docs/raw-path.md)."""

from __future__ import annotations

import errno
import ipaddress
import socket

import pytest
from helpers import inject, ipv6_udp_frame, sandbox_frame, udp_roundtrip
from pyroute2 import IPRoute

from rawpacer.errors import UsageError
from rawpacer.sandbox import READER_IP6, WRITER_IP6, Sandbox
from rawpacer.sandbox.topology import QUIET_IPV6_SYSCTLS, QUIET_SYSCTLS, read_sysctl, write_sysctls

BENCHMARKING_RANGE = ipaddress.ip_network("2001:2::/48")  # RFC 5180
IFA_F_NODAD, IFA_F_TENTATIVE = 0x02, 0x40  # include/uapi/linux/if_addr.h
NUD_PERMANENT = 0x80  # include/uapi/linux/neighbour.h
IPV6_UDP_OVERHEAD = 48  # 40-byte IPv6 header + 8-byte UDP header
LINKS = [("lo", None), ("veth", 1280), ("veth", 1500), ("veth", 9000)]


def snmp6() -> dict[str, int]:
    """The IPv6 MIB counters of this thread's namespace."""
    with open("/proc/thread-self/net/snmp6") as handle:
        return {name: int(value) for name, value in (line.split() for line in handle)}


def reader_socket(topo, port: int) -> socket.socket:
    with topo.enter("reader"):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::", port))
    sock.settimeout(0.5)
    return sock


def injected(topo, frame: bytes, port: int) -> tuple[bytes | None, dict[str, int]]:
    """Inject ``frame``; what a reader on ``port`` received (None: nothing) and the IPv6 counters that moved."""
    with reader_socket(topo, port) as reader:
        with topo.enter("reader"):
            before = snmp6()
        inject(topo, [frame])
        try:
            got: bytes | None = reader.recv(65535)
        except TimeoutError:
            got = None
        with topo.enter("reader"):
            after = snmp6()
    return got, {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}


@pytest.mark.parametrize("kind, mtu", LINKS)
def test_kernel_udp_and_injected_frames_reach_an_inet6_reader(kind, mtu):
    with Sandbox(kind, mtu=mtu, ip_version=6) as topo:
        assert topo.ip_version == 6 and topo.link().mtu == (mtu or 65536)
        assert all(ipaddress.ip_address(ip) in BENCHMARKING_RANGE for ip in (topo.writer_ip, topo.reader_ip))
        size = topo.mtu - IPV6_UDP_OVERHEAD  # the largest datagram that crosses the link unfragmented
        assert udp_roundtrip(topo, size) == b"r" * size
        payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        got, moved = injected(topo, sandbox_frame(topo, 5002, payload), 5002)
        assert got == payload
        assert moved["Udp6InDatagrams"] == 1


def test_addresses_are_usable_at_once_and_neighbours_are_pinned_both_ways():
    with Sandbox("veth", ip_version=6) as topo:
        assert (topo.writer_ip, topo.reader_ip) == (WRITER_IP6, READER_IP6)
        link = topo.link()
        sides = (
            ("writer", topo.writer_ip, topo.reader_ip, link.dst_mac),
            ("reader", topo.reader_ip, topo.writer_ip, link.src_mac),
        )
        for side, own, peer, peer_mac in sides:
            with topo.enter(side), IPRoute() as ipr:
                (address,) = [a for a in ipr.get_addr(family=socket.AF_INET6) if a.get_attr("IFA_ADDRESS") == own]
                flags = address.get_attr("IFA_FLAGS")
                (neighbour,) = ipr.get_neighbours(family=socket.AF_INET6, dst=peer)
            assert flags & IFA_F_NODAD and not flags & IFA_F_TENTATIVE
            assert neighbour["state"] == NUD_PERMANENT and neighbour.get_attr("NDA_LLADDR") == peer_mac
        assert udp_roundtrip(topo, 100) == b"r" * 100  # bound and used the moment the sandbox exists


def test_without_nodad_an_address_would_be_tentative_and_unusable():
    """The control for the test above: with DAD on, a fresh address cannot be bound (RFC 4862, 5.4)."""
    with Sandbox("veth", ip_version=6) as topo, topo.enter("writer"):
        write_sysctls({"net/ipv6/conf/rpw0/accept_dad": "1", "net/ipv6/conf/rpw0/dad_transmits": "1"})
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname="rpw0")[0]
            ipr.addr("add", index=index, address="2001:2::3", prefixlen=64)
            (address,) = [a for a in ipr.get_addr(family=socket.AF_INET6) if a.get_attr("IFA_ADDRESS") == "2001:2::3"]
        assert address.get_attr("IFA_FLAGS") & IFA_F_TENTATIVE
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock, pytest.raises(OSError) as raised:
            sock.bind(("2001:2::3", 0))
        assert raised.value.errno == errno.EADDRNOTAVAIL


def test_ipv6_is_on_and_quiet_only_inside_ipv6_sandboxes():
    host = {key: read_sysctl(key) for key in QUIET_IPV6_SYSCTLS}
    with Sandbox("veth", ip_version=6) as topo:
        for side, ifname in (("writer", "rpw0"), ("reader", "rpr0")):
            with topo.enter(side):
                assert {key: read_sysctl(key) for key in QUIET_IPV6_SYSCTLS} == QUIET_IPV6_SYSCTLS
                veth = {
                    key: read_sysctl(f"net/ipv6/conf/{ifname}/{key}")
                    for key in ("disable_ipv6", "accept_dad", "router_solicitations", "accept_ra")
                }
                assert set(veth.values()) == {"0"}  # the veth ends inherit the namespace's defaults
                assert snmp6()["Icmp6OutRouterSolicits"] == 0
    with Sandbox("veth") as topo, topo.enter("reader"):
        assert {key: read_sysctl(key) for key in QUIET_SYSCTLS} == QUIET_SYSCTLS  # IPv4 runs keep IPv6 off
        assert read_sysctl("net/ipv6/conf/rpr0/disable_ipv6") == "1"
    assert {key: read_sysctl(key) for key in QUIET_IPV6_SYSCTLS} == host


# What the kernel does with IPv6 frames injected with AF_PACKET (the table in docs/raw-path.md):
# (what, source, destination, frame options, counter that moves on lo, on veth). "writer" and
# "reader" stand for the sandbox's addresses; Udp6InDatagrams means the reader got the datagram.
INJECTED = [
    ("from the writer", "writer", "reader", {}, "Udp6InDatagrams", "Udp6InDatagrams"),
    ("the reader's own source", "reader", "reader", {}, "Udp6InDatagrams", "Udp6InDatagrams"),
    ("a foreign source", "2001:2::99", "reader", {}, "Udp6InDatagrams", "Udp6InDatagrams"),
    ("a link-local source", "fe80::1", "reader", {}, "Udp6InDatagrams", "Udp6InDatagrams"),
    ("a documentation source", "2001:db8::1", "reader", {}, "Udp6InDatagrams", "Udp6InDatagrams"),
    ("a v4-mapped source", "::ffff:198.18.0.1", "reader", {}, "Udp6InDatagrams", "Udp6InDatagrams"),
    ("hop limit 0", "writer", "reader", {"hop_limit": 0}, "Udp6InDatagrams", "Udp6InDatagrams"),
    ("source ::1", "::1", "reader", {}, "Udp6InDatagrams", "Ip6InHdrErrors"),  # RFC 4291, 2.5.3
    ("destination ::1", "writer", "::1", {}, "Udp6InDatagrams", "Ip6InHdrErrors"),
    ("a multicast source", "ff02::1", "reader", {}, "Ip6InHdrErrors", "Ip6InHdrErrors"),  # RFC 4291, 2.7
    ("a destination not here", "writer", "2001:2::77", {}, "Ip6InNoRoutes", "Ip6InAddrErrors"),
    ("UDP checksum 0", "writer", "reader", {"checksum": 0}, "Udp6InCsumErrors", "Udp6InCsumErrors"),  # RFC 8200, 8.1
    ("a wrong UDP checksum", "writer", "reader", {"checksum": 0x1234}, "Udp6InCsumErrors", "Udp6InCsumErrors"),
]


@pytest.mark.parametrize("kind", ["lo", "veth"])
def test_what_the_kernel_does_with_injected_ipv6_frames(kind):
    """Unlike IPv4 (accept_local, route_localnet), IPv6 needs no sysctl: no local source is a martian."""
    with Sandbox(kind, ip_version=6) as topo:
        link = topo.link()
        named = {"writer": topo.writer_ip, "reader": topo.reader_ip}
        for what, src, dst, options, on_lo, on_veth in INJECTED:
            counter = on_lo if kind == "lo" else on_veth
            payload = what.encode()
            frame = ipv6_udp_frame(link, named.get(src, src), named.get(dst, dst), 5003, payload, **options)
            got, moved = injected(topo, frame, 5003)
            assert (got == payload) is (counter == "Udp6InDatagrams"), f"{what} on {kind}: {moved}"
            assert moved.get(counter) == 1, f"{what} on {kind}: {counter} did not move by one: {moved}"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"kind": "veth", "mtu": 1279, "ip_version": 6}, "mtu 1279 is below IPv6's minimum link MTU 1280"),
        ({"kind": "lo", "mtu": 576, "ip_version": 6}, "mtu 576 is below"),
        ({"kind": "veth", "ip_version": 5}, "ip_version 5 is not allowed; use 4 or 6"),
        ({"kind": "veth", "ip_version": "6"}, "ip_version '6' is not allowed"),
    ],
)
def test_bad_ipv6_input_is_one_clear_error(kwargs, words):
    with pytest.raises(UsageError, match=words) as raised:
        Sandbox(**kwargs)
    assert "\n" not in str(raised.value)


def test_ipv4_mtu_below_1280_stays_allowed():
    with Sandbox("veth", mtu=576) as topo:
        assert topo.ip_version == 4 and udp_roundtrip(topo, 548) == b"r" * 548
