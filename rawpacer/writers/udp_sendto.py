"""``udp-sendto``: the baseline, one ``sendto`` per reader in a loop (the seed's BenchmarkRawUDP)."""

from __future__ import annotations

from collections.abc import Sequence

from rawpacer.engine import Frames
from rawpacer.writers._udp_socket import UdpWriter
from rawpacer.writers.base import Message, register, socket_frames


@register
class UdpSendto(UdpWriter):
    """The seed's baseline: one blocking ``sendto`` per reader, in order."""

    name = "udp-sendto"
    order = 0
    summary = "kernel UDP socket, one sendto(2) per reader in a loop (the seed's baseline)"

    def replay_frames(self, messages: Sequence[Message]) -> Frames | None:
        """The messages themselves, one sendto() each (sendmmsg for a paced burst), to each reader's address."""
        return socket_frames(self.sock, messages, self.delivered_size, self.sockaddrs)

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """One ``sendto`` per reader, in order."""
        sendto, destinations = self.sock.sendto, self.destinations
        for index in range(start, stop):
            sendto(messages[index], destinations[index])
        return stop - start
