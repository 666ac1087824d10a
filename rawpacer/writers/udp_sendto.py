"""``udp-sendto``: the baseline, one ``sendto`` per reader in a loop (the seed's BenchmarkRawUDP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rawpacer import engine
from rawpacer.engine import Frames
from rawpacer.writers._udp_socket import UdpWriter
from rawpacer.writers.base import Message, pooled, register, socket_frames

if TYPE_CHECKING:
    from rawpacer.traffic.pool import FramePool


@register
class UdpSendto(UdpWriter):
    """The seed's baseline: one blocking ``sendto`` per reader, in order."""

    name = "udp-sendto"
    order = 0
    summary = "kernel UDP socket, one sendto(2) per reader in a loop (the seed's baseline)"

    def replay_frames(self, messages: Sequence[Message]) -> Frames | None:
        """The messages themselves, one sendto() each (sendmmsg for a paced burst), to each reader's address."""
        return socket_frames(self.sock, messages, self.delivered_size, self.sockaddrs)

    def pool_frames(self, pool: FramePool) -> Frames | None:
        """The pool's datagrams, one sendto() each (sendmmsg for a paced burst), each to its own reader's address."""
        sender = engine.mmsg(self.sock.fileno()) if engine.BUILT else None
        return pooled(sender, pool, 1, skip=pool.payload_at, destinations=pool.addresses())

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """One ``sendto`` per reader, in order."""
        sendto, destinations = self.sock.sendto, self.destinations
        for index in range(start, stop):
            sendto(messages[index], destinations[index])
        return stop - start
