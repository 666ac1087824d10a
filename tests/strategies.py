"""Hypothesis strategies and small helpers shared by the header tests (tests/unit/test_headers*.py)."""

from __future__ import annotations

import ipaddress
import random

from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from rawpacer.headers import FrameTemplate
from rawpacer.limits import MAX_UDP_PAYLOAD, MAX_UDP_PAYLOAD_V6

ports = st.integers(0, 65535)
test_ips = st.integers(0, (1 << 17) - 1).map(lambda i: f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}")
"""IPv4 addresses from 198.18.0.0/15 (RFC 2544's benchmarking range)."""
test_ips_v6 = st.integers(0, (1 << 80) - 1).map(lambda i: str(ipaddress.IPv6Address((0x20010002_0000 << 80) | i)))
"""IPv6 addresses from 2001:2::/48 (RFC 5180's benchmarking range)."""
any_ips_v6 = st.integers(0, (1 << 128) - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
"""Any IPv6 address at all (v4-mapped, link-local, multicast, ::)."""
ips_v6 = st.one_of(test_ips_v6, any_ips_v6)
macs = st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":"))


def sized(n: int) -> bytes:
    """``n`` reproducible pseudo-random bytes."""
    return random.Random(n).randbytes(n)


def payloads(limit: int) -> st.SearchStrategy[bytes]:
    """Payloads up to ``limit`` bytes: small arbitrary ones, any length, and the edges."""
    return st.one_of(
        st.binary(max_size=1600),
        st.integers(0, limit).map(sized),
        st.sampled_from([limit, 1472, 1473, 1452, 1453, 0, 1]).map(sized),
    )


@st.composite
def frame_args(draw: st.DrawFn, ip_version: int = 4, tagged: bool | None = False) -> dict:
    """Keyword arguments for build_frame (dport and payload included) of this IP version; an
    802.1Q tag when ``tagged`` (None: drawn)."""
    args: dict = {"dport": draw(ports), "sport": draw(ports), "src_mac": draw(macs), "dst_mac": draw(macs)}
    if ip_version == 4:
        args |= {
            "payload": draw(payloads(MAX_UDP_PAYLOAD)),
            "src_ip": draw(test_ips),
            "dst_ip": draw(test_ips),
            "ttl": draw(st.integers(0, 255)),
            "ip_id": draw(st.integers(0, 65535)),
            "df": draw(st.booleans()),
        }
    else:
        args |= {
            "payload": draw(payloads(MAX_UDP_PAYLOAD_V6)),
            "src_ip": draw(ips_v6),
            "dst_ip": draw(ips_v6),
            "hop_limit": draw(st.integers(0, 255)),
            "flow_label": draw(st.one_of(st.integers(0, (1 << 20) - 1), st.sampled_from([0, 1, 0xFFFFF]))),
            "traffic_class": draw(st.integers(0, 255)),
        }
    if draw(st.booleans()) if tagged is None else tagged:
        args |= {
            "vlan": draw(st.one_of(st.integers(0, 4094), st.sampled_from([0, 1, 4094]))),
            "vlan_priority": draw(st.integers(0, 7)),
            "vlan_dei": draw(st.booleans()),
        }
    return args


LINK_KEYS = ("src_mac", "dst_mac", "vlan", "vlan_priority", "vlan_dei")


def without_link(args: dict) -> dict:
    """``args`` without the Ethernet fields (for build_packet and ``ethernet=False``)."""
    return {k: v for k, v in args.items() if k not in LINK_KEYS}


def fixed_fields(args: dict) -> dict:
    """``args`` without dport and payload: the keyword fields."""
    return {k: v for k, v in args.items() if k not in ("dport", "payload")}


def template_for(args: dict, **extra: object) -> FrameTemplate:
    """The FrameTemplate for the destination ``args`` describe."""
    return FrameTemplate(args["dport"], **fixed_fields(args), **extra)


def scapy_packet(args: dict, *, ethernet: bool = True) -> Packet:
    """scapy's own build of the frame (or IP packet) ``args`` describe: the independent reference."""
    if "hop_limit" in args:
        ip = IPv6(
            src=args["src_ip"],
            dst=args["dst_ip"],
            hlim=args["hop_limit"],
            fl=args["flow_label"],
            tc=args["traffic_class"],
        )
    else:
        ip = IP(
            src=args["src_ip"], dst=args["dst_ip"], ttl=args["ttl"], id=args["ip_id"], flags="DF" if args["df"] else 0
        )
    packet = ip / UDP(sport=args["sport"], dport=args["dport"]) / Raw(args["payload"])
    if not ethernet:
        return packet
    if "vlan" in args:
        packet = Dot1Q(prio=args["vlan_priority"], dei=int(args["vlan_dei"]), vlan=args["vlan"]) / packet
    return Ether(src=args["src_mac"], dst=args["dst_mac"]) / packet
