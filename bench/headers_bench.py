"""Frames per second of each way to build one Ethernet/IPv4/UDP frame for a 1472-byte payload.

Run: .venv/bin/python bench/headers_bench.py [--payload 1472] [--repeats 7] [--seconds 0.2]
Methods run alternately, round after round; each figure is the median over the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from rawpacer.headers import IMPLEMENTATION, FrameTemplate, build_frame
from rawpacer.headers import template as template_module
from rawpacer.headers.checksum import python_ones_sum

ADDR = {"src_ip": "198.18.0.1", "dst_ip": "198.18.0.2", "src_mac": "02:00:00:00:00:01", "dst_mac": "02:00:00:00:00:02"}


def methods(payload: bytes) -> dict[str, Callable[[], object]]:
    """The contenders, each a no-argument call that builds one frame."""
    template = FrameTemplate(40000, **ADDR)
    ring_slot = bytearray(2048)

    def scapy() -> bytes:
        return bytes(
            Ether(src=ADDR["src_mac"], dst=ADDR["dst_mac"])
            / IP(src=ADDR["src_ip"], dst=ADDR["dst_ip"], ttl=64, id=0, flags="DF")
            / UDP(sport=40101, dport=40000)
            / Raw(payload)
        )

    assert template.stamp(payload) == build_frame(40000, payload, **ADDR) == scapy()
    return {
        "stamp": lambda: template.stamp(payload),
        "stamp_into": lambda: template.stamp_into(ring_slot, 0, payload),
        "build_frame (dpkt)": lambda: build_frame(40000, payload, **ADDR),
        "scapy": scapy,
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
    parser.add_argument("--payload", type=int, default=1472, help="payload bytes (default 1472)")
    parser.add_argument("--repeats", type=int, default=7, help="rounds, median reported (default 7)")
    parser.add_argument(
        "--python-checksum", action="store_true", help="use the pure-Python checksum even if the C extension is built"
    )
    parser.add_argument("--seconds", type=float, default=0.2, help="time per method per round (default 0.2)")
    args = parser.parse_args()
    implementation = IMPLEMENTATION
    if args.python_checksum:
        template_module.ones_sum, implementation = python_ones_sum, "python"
    contenders = methods(os.urandom(args.payload))
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, call in contenders.items():
            rates[name].append(rate(call, args.seconds))
    print(
        f"payload {args.payload} B, checksum implementation {implementation!r}, "
        f"median of {args.repeats} alternating rounds"
    )
    print(f"{'method':<20} {'frames/s':>12} {'us/frame':>10}")
    median = {name: statistics.median(r) for name, r in rates.items()}
    for name, r in median.items():
        print(f"{name:<20} {r:>12,.0f} {1e6 / r:>10.2f}")
    base = median["build_frame (dpkt)"]
    print(
        f"stamp / build_frame = {median['stamp'] / base:.1f}x, "
        f"stamp_into / build_frame = {median['stamp_into'] / base:.1f}x, "
        f"stamp / scapy = {median['stamp'] / median['scapy']:.1f}x"
    )


if __name__ == "__main__":
    main()
