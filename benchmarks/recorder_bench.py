"""A replay's recording process, its C loop (``readers._record``) against its Python twin: the
datagrams per second it records and its CPU per datagram, for 64- and 1472-byte payloads.

Run (root): .venv/bin/python benchmarks/recorder_bench.py [--count 200000] [--slots 4]

One veth sandbox; the sender is the packet-ring writer (prebuilt frames from C, as a replay's),
each datagram distinct. Two cases per loop and size:

- ``backlog``: the recording process stopped (SIGSTOP) while ``--count`` datagrams fill its
  sockets' buffers, then let go and collected: how fast it empties them with a CPU to itself
  (the CPU per datagram, its ``schedstat`` run time, includes the recvmsg/recvmmsg system calls);
- ``live``: the same datagrams sent at the writer's top speed while it records: how many it got,
  how many the kernel dropped, its CPU per datagram, and the rate the datagrams arrived at
  (their kernel receive stamps), all on the same two vCPUs as the sender.
"""

from __future__ import annotations

import argparse
import os
import signal
import struct
import time
from typing import Any

from rawpacer.headers import FrameTemplate
from rawpacer.host import describe
from rawpacer.readers.replay import ReplayReaders
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.writers import WriterOptions, get

RCVBUF = 256 << 20
SETTLE_S = 0.05


def run_ns(pid: int) -> int:
    """CPU time the (single-threaded) process has run, in ns (/proc/PID/schedstat's first field)."""
    with open(f"/proc/{pid}/schedstat") as handle:
        return int(handle.read().split()[0])


def frames_for(topo: Topology, ports: list[int], count: int, payload: int) -> list[bytes]:
    """``count`` frames round the ports, frame i's payload starting with i."""
    link = topo.link()
    templates = [
        FrameTemplate(port, src_ip=topo.writer_ip, dst_ip=topo.reader_ip, src_mac=link.src_mac, dst_mac=link.dst_mac)
        for port in ports
    ]
    pad = bytes(payload - 8)
    return [templates[i % len(ports)].stamp(struct.pack("!Q", i) + pad) for i in range(count)]


def one(topo: Topology, recorder: str, case: str, slots: int, count: int, payload: int) -> dict[str, Any]:
    """One case: received, drops, wall and CPU figures."""
    with ReplayReaders(topo, slots, rcvbuf=RCVBUF, recorder=recorder) as readers:
        frames = frames_for(topo, list(readers.ports), count, payload)
        with topo.enter("writer"):
            writer = get("packet-ring")(topo.target(readers.ports), WriterOptions(message_size=payload))
        with writer:
            if case == "backlog":
                os.kill(readers.pid, signal.SIGSTOP)
                try:
                    writer.send_frames(frames)
                    time.sleep(0.5)  # the veth's backlog delivered into the sockets
                finally:
                    cpu0 = run_ns(readers.pid)
                    start = time.monotonic_ns()
                    os.kill(readers.pid, signal.SIGCONT)
                got = readers.collect(SETTLE_S)
                wall_ns = time.monotonic_ns() - start - int(SETTLE_S * 1e9)
            else:
                cpu0 = run_ns(readers.pid)
                writer.send_frames(frames)
                got = readers.collect(SETTLE_S)
                wall_ns = 0
            cpu_ns = run_ns(readers.pid) - cpu0
    n = int(got.slot.size)
    span = int(got.rx_ns[-1] - got.rx_ns[0]) if n >= 2 else 0
    out: dict[str, Any] = {"received": n, "drops": got.socket_drops, "cpu_ns_per_dg": cpu_ns / n if n else None}
    if case == "backlog":
        out["records_per_s"] = n * 1e9 / wall_ns if wall_ns > 0 else None
    else:
        out["arrival_rate_per_s"] = (n - 1) * 1e9 / span if span else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000, help="datagrams per case")
    parser.add_argument("--slots", type=int, default=4, help="reader sockets")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case")
    args = parser.parse_args()
    print(describe())
    with Sandbox("veth") as topo:
        for payload in (64, 1472):
            for case in ("backlog", "live"):
                for recorder in ("python", "c"):
                    for _ in range(args.repeat):
                        figures = one(topo, recorder, case, args.slots, args.count, payload)
                        shown = {k: round(v) if isinstance(v, float) else v for k, v in figures.items()}
                        print(f"{payload:5d} B  {case:8s} {recorder:7s} {shown}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
