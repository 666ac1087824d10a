"""Frames per second of each way to build one full-MTU UDP frame: IPv4, IPv4 with an 802.1Q tag, IPv6.

Run: .venv/bin/python benchmarks/headers_bench.py [--mtu 1500] [--payload N] [--repeats 7] [--seconds 0.2]
Each frame carries the largest payload one datagram takes at the MTU (1472 bytes over IPv4, 1452
over IPv6 at MTU 1500) unless --payload says otherwise. Methods run alternately, round after
round; each figure is the median over the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from rawpacer.headers import CHECKSUM_ENV, IMPLEMENTATION, FrameTemplate, build_frame, max_payload

MACS = {"src_mac": "02:00:00:00:00:01", "dst_mac": "02:00:00:00:00:02"}
CASES: dict[str, dict] = {
    "IPv4": {"src_ip": "198.18.0.1", "dst_ip": "198.18.0.2", **MACS},
    "IPv4 + 802.1Q": {"src_ip": "198.18.0.1", "dst_ip": "198.18.0.2", "vlan": 100, "vlan_priority": 5, **MACS},
    "IPv6": {"src_ip": "2001:2::1", "dst_ip": "2001:2::2", **MACS},
}


def scapy_frame(fields: dict, payload: bytes) -> Packet:
    """scapy's layers for the same frame (checksums and lengths computed when turned into bytes)."""
    if ":" in fields["src_ip"]:
        ip = IPv6(src=fields["src_ip"], dst=fields["dst_ip"], hlim=64)
    else:
        ip = IP(src=fields["src_ip"], dst=fields["dst_ip"], ttl=64, id=0, flags="DF")
    link = Ether(src=fields["src_mac"], dst=fields["dst_mac"])
    if "vlan" in fields:
        link /= Dot1Q(vlan=fields["vlan"], prio=fields["vlan_priority"])
    return link / ip / UDP(sport=40101, dport=40000) / Raw(payload)


def methods(fields: dict, payload: bytes) -> dict[str, Callable[[], object]]:
    """The contenders for one case, each a no-argument call that builds one frame."""
    template = FrameTemplate(40000, **fields)
    ring_slot = bytearray(2048)
    assert template.stamp(payload) == build_frame(40000, payload, **fields) == bytes(scapy_frame(fields, payload))
    return {
        "stamp": lambda: template.stamp(payload),
        "stamp_into": lambda: template.stamp_into(ring_slot, 0, payload),
        "build_frame (dpkt)": lambda: build_frame(40000, payload, **fields),
        "scapy": lambda: bytes(scapy_frame(fields, payload)),
    }


def rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per second, timed over about ``seconds`` (batch size calibrated first)."""
    batch = 1
    while True:
        start = time.perf_counter()
        for _ in range(batch):
            call()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 4:
            break
        batch *= 4
    start = time.perf_counter()
    n = max(1, int(batch * seconds / elapsed))
    for _ in range(n):
        call()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mtu", type=int, default=1500, help="the payload fills one datagram at this MTU (default 1500)"
    )
    parser.add_argument("--payload", type=int, help="payload bytes for every case instead")
    parser.add_argument("--repeats", type=int, default=7, help="rounds, median reported (default 7)")
    parser.add_argument(
        "--python-checksum", action="store_true", help="use the pure-Python checksum even if the C extension is built"
    )
    parser.add_argument("--seconds", type=float, default=0.2, help="time per method per round (default 0.2)")
    args = parser.parse_args()
    if args.python_checksum and IMPLEMENTATION != "python":  # picked at import: run again with it forced
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, CHECKSUM_ENV: "python"})
    contenders: dict[tuple[str, str], Callable[[], object]] = {}
    sizes = {}
    for case, fields in CASES.items():
        sizes[case] = args.payload if args.payload is not None else max_payload(args.mtu, 6 if case == "IPv6" else 4)
        for name, call in methods(fields, os.urandom(sizes[case])).items():
            contenders[case, name] = call
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in contenders}
    for _ in range(args.repeats):
        for key, call in contenders.items():
            rates[key].append(rate(call, args.seconds))
    median = {key: statistics.median(r) for key, r in rates.items()}
    print(f"checksum implementation {IMPLEMENTATION!r}, median of {args.repeats} alternating rounds")
    print(f"{'frame':<15} {'payload':>7} {'method':<20} {'frames/s':>12} {'us/frame':>10} {'x dpkt':>7}")
    for (case, name), r in median.items():
        ratio = r / median[case, "build_frame (dpkt)"]
        print(f"{case:<15} {sizes[case]:>7} {name:<20} {r:>12,.0f} {1e6 / r:>10.2f} {ratio:>7.1f}")


if __name__ == "__main__":
    main()
