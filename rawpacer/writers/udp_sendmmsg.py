"""``udp-sendmmsg``: the whole fan-out in one ``sendmmsg(2)`` (chunks of 1024 beyond that)."""

from __future__ import annotations

from collections.abc import Sequence

from rawpacer.kernel.sendmmsg import SendBatch
from rawpacer.target import Target
from rawpacer.writers._udp_socket import UdpWriter
from rawpacer.writers.base import Knobs, Message, WriterOptions, register


@register
class UdpSendmmsg(UdpWriter):
    """Prebuilt mmsghdr/iovec arrays; each send points the iovecs at the messages and makes one call."""

    name = "udp-sendmmsg"
    order = 2
    summary = "kernel UDP socket, one sendmmsg(2) per fan-out through ctypes"

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        self._batch = SendBatch(target.dst_ip, target.ports)
        self.own(self._batch.forget)

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """Point the prebuilt iovecs at the messages and send the span with ``sendmmsg`` (resumed if partial)."""
        self._batch.set_buffers(messages, start, stop)
        return self._batch.send(self.sock.fileno(), start, stop)
