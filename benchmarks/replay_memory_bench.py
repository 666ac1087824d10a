"""How much memory a long replay takes: ``rawpacer.send`` of a capture of 64-byte UDP frames looped,
veth, packet-ring, paced or at top speed; the parent's resident peak above its start (VmHWM after
clear_refs) and the recording process's peak (VmHWM, polled). Root (sudo-run.sh's venv).

    sudo .venv/bin/python benchmarks/replay_memory_bench.py --frames 1000000 --loop 10 --rate 100k
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import rawpacer
from rawpacer.bench import replay

FLOWS = 4
FRAME = 64
"""Ethernet 14 + IPv4 20 + UDP 8 + 22 bytes of payload (its first 8 the frame's number)."""


def ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_capture(path: Path, frames: int) -> None:
    """``frames`` distinct 64-byte frames round FLOWS flows, 10 us apart, UDP checksum 0 (none)."""
    heads = []
    for flow in range(FLOWS):
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, FRAME - 14, 0, 0, 64, 17, 0, bytes([10, 1, 1, 1]), bytes([10, 0, 0, 1 + flow])
        )
        ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
        udp = struct.pack("!HHHH", 3333, 53, FRAME - 34, 0)
        heads.append(b"\x02\0\0\0\0\x0b\x02\0\0\0\0\x0a\x08\x00" + ip + udp)
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(frames):
            us = i * 10
            out.write(struct.pack("<IIII", 1_700_000_000 + us // 1_000_000, us % 1_000_000, FRAME, FRAME))
            out.write(heads[i % FLOWS] + struct.pack("!Q", i) + bytes(FRAME - 42 - 8))


def status_kib(pid: int | str, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def children() -> list[int]:
    found = []
    for task in Path("/proc/self/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--loop", type=int, default=10)
    parser.add_argument("--rate", default="100k", help="packets/s, or 'top' for top speed")
    parser.add_argument("--writer", default="packet-ring")
    parser.add_argument("--take-every", type=float, help="s between takes while sending (default: the replay's)")
    args = parser.parse_args()
    if args.take_every is not None and hasattr(replay, "TAKE_EVERY_S"):
        replay.TAKE_EVERY_S = args.take_every
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.pcap"
        write_capture(path, args.frames)
        peaks: dict[int, int] = {}
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(0.1):
                for pid in children():
                    try:
                        peaks[pid] = max(peaks.get(pid, 0), status_kib(pid, "VmHWM"))
                    except (FileNotFoundError, ProcessLookupError):
                        pass

        warm = Path(tmp) / "warm.pcap"
        write_capture(warm, 1000)  # every module imported and every lazy set-up done before the baseline
        rawpacer.send(str(warm), writer=args.writer, topology="veth", rate="100k")
        start_rss = status_kib("self", "VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here
        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        started = time.perf_counter()
        timing: dict[str, Any] = {"topspeed": True} if args.rate == "top" else {"rate": args.rate}
        result = rawpacer.send(str(path), writer=args.writer, topology="veth", loop=args.loop, **timing)
        elapsed = time.perf_counter() - started
        stop.set()
        thread.join()
        hwm = status_kib("self", "VmHWM")
    pacing = result.pacing or {}
    out = {
        "frames": args.frames * args.loop,
        "rate": args.rate,
        "seconds": round(elapsed, 1),
        "parent_growth_mib": round((hwm - start_rss) / 1024, 1),
        "recorder_peak_mib": round(max(peaks.values(), default=0) / 1024, 1),
        "total": result.total.as_dict(),
        "ok": result.ok,
        "rate_achieved_pps": pacing.get("rate_achieved_pps"),
        "gap_dev_ns": pacing.get("gap_dev_ns"),
        "gap_dev_from": pacing.get("gap_dev_from"),
        "pacer_stalls": (result.pacer or {}).get("stalls"),
        "pacer_late_ns": (result.pacer or {}).get("lateness_ns"),
        "load": os.getloadavg(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
