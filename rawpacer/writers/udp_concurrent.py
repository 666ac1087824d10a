"""``udp-concurrent``: the seed's solution in Python, one concurrent ``sendto`` per reader.

A thread pool kept open across ops stands in for the goroutines; the fan-out is joined before
``send`` returns, like the seed's WaitGroup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from rawpacer.target import Target
from rawpacer.writers._udp_socket import UdpWriter
from rawpacer.writers.base import WriterOptions, register

MAX_DEFAULT_THREADS = 32


@register
class UdpConcurrent(UdpWriter):
    name = "udp-concurrent"
    order = 1
    summary = "kernel UDP socket, one concurrent sendto(2) per reader on a thread pool (the seed's goroutines)"

    def __init__(self, target: Target, options: WriterOptions) -> None:
        super().__init__(target, options)
        threads = options.threads or min(MAX_DEFAULT_THREADS, len(target.ports), (os.cpu_count() or 1) + 4)
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="udp-concurrent")

    def send(self, messages: Sequence[bytes | memoryview]) -> int:
        """One ``sendto`` per reader submitted to the pool, all joined before returning."""
        self.check_fanout(messages)
        for _ in self._pool.map(self.sock.sendto, messages, self.destinations):
            pass
        return len(messages)

    def close(self) -> None:
        """Shut the thread pool down, then close the socket."""
        self._pool.shutdown(wait=True)
        super().close()
