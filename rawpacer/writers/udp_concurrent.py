"""``udp-concurrent``: the seed's solution in Python, one concurrent ``sendto`` per reader.

A thread pool kept open across ops stands in for the goroutines; the fan-out is joined before
``send`` returns, like the seed's WaitGroup.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rawpacer.target import Target
from rawpacer.writers._udp_socket import UdpWriter
from rawpacer.writers.base import Knobs, Message, WriterOptions, check_count, register

MAX_DEFAULT_THREADS = 32


@dataclass(frozen=True)
class PoolKnobs(Knobs):
    """``threads``: the pool's size (0: one per reader, at most the CPUs + 4 and 32)."""

    threads: int = 0

    def __post_init__(self) -> None:
        """The thread count is 0 (automatic) or positive."""
        check_count("threads", self.threads)


@register
class UdpConcurrent(UdpWriter):
    """One ``sendto`` per reader submitted to a thread pool, joined before ``send`` returns."""

    name = "udp-concurrent"
    order = 1
    summary = "kernel UDP socket, one concurrent sendto(2) per reader on a thread pool (the seed's goroutines)"
    knobs_type = PoolKnobs
    knobs: PoolKnobs

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        cpus = (os.cpu_count() or 1) + 4
        self.threads = self.knobs.threads or min(MAX_DEFAULT_THREADS, len(target.ports), cpus)
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="udp-concurrent")
        self.own(self._pool.shutdown)

    def stamping_socket(self) -> socket.socket | None:
        """None: the pool's threads send in whatever order they run, so a stamp's place among the
        sends does not say which datagram it was."""
        return None

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """One ``sendto`` per reader submitted to the pool, all joined before returning."""
        for _ in self._pool.map(self.sock.sendto, messages[start:stop], self.destinations[start:stop]):
            pass
        return stop - start
