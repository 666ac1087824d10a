"""``udp-sendmmsg``: the whole fan-out in one ``sendmmsg(2)`` (chunks of 1024 beyond that)."""

from __future__ import annotations

from collections.abc import Sequence

from rawpacer.kernel.sendmmsg import SendBatch
from rawpacer.target import Target
from rawpacer.writers._udp_socket import UdpWriter
from rawpacer.writers.base import WriterOptions, register


@register
class UdpSendmmsg(UdpWriter):
    name = "udp-sendmmsg"
    order = 2
    summary = "kernel UDP socket, one sendmmsg(2) per fan-out through ctypes"

    def __init__(self, target: Target, options: WriterOptions) -> None:
        super().__init__(target, options)
        self._batch = SendBatch(target.dst_ip, target.ports)

    def send(self, messages: Sequence[bytes | memoryview]) -> int:
        """Point the prebuilt iovecs at the messages and send them with one ``sendmmsg`` (resumed if partial)."""
        self.check_fanout(messages)
        self._batch.set_buffers(messages)
        return self._batch.send(self.sock.fileno())

    def close(self) -> None:
        """Close the socket. Safe to call twice."""
        self._batch.forget()
        super().close()
