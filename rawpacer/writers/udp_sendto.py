"""``udp-sendto``: the baseline, one ``sendto`` per reader in a loop (the seed's BenchmarkRawUDP)."""

from __future__ import annotations

from collections.abc import Sequence

from rawpacer.writers._udp_socket import UdpWriter
from rawpacer.writers.base import Message, Prebuilt, register


@register
class UdpSendto(UdpWriter):
    """The seed's baseline: one blocking ``sendto`` per reader, in order."""

    name = "udp-sendto"
    order = 0
    summary = "kernel UDP socket, one sendto(2) per reader in a loop (the seed's baseline)"

    def prebuilt(self, messages: Sequence[Message]) -> Prebuilt | None:
        """The messages themselves, to each reader's address (IPv4: the C loop's sockaddr_in)."""
        return None if self.target.ip_version == 6 else (self.sock, list(messages), self.destinations)

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """One ``sendto`` per reader, in order."""
        sendto, destinations = self.sock.sendto, self.destinations
        for index in range(start, stop):
            sendto(messages[index], destinations[index])
        return stop - start
