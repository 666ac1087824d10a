"""``udp-sendto``: the baseline, one ``sendto`` per reader in a loop (the seed's BenchmarkRawUDP)."""

from __future__ import annotations

from collections.abc import Sequence

from rawpacer.writers._udp_socket import UdpWriter
from rawpacer.writers.base import register


@register
class UdpSendto(UdpWriter):
    name = "udp-sendto"
    order = 0
    summary = "kernel UDP socket, one sendto(2) per reader in a loop (the seed's baseline)"

    def send(self, messages: Sequence[bytes | memoryview]) -> int:
        """One ``sendto`` per reader, in order: the seed's baseline."""
        self.check_fanout(messages)
        sendto = self.sock.sendto
        for message, destination in zip(messages, self.destinations):
            sendto(message, destination)
        return len(messages)
