"""``udp-sendmmsg``: the whole fan-out in one ``sendmmsg(2)`` (chunks of 1024 beyond that), through the engine."""

from __future__ import annotations

from collections.abc import Sequence

from rawpacer import engine
from rawpacer.engine import Frames
from rawpacer.target import Target
from rawpacer.writers._udp_socket import UdpWriter
from rawpacer.writers.base import MAX_BATCH, Knobs, Message, WriterOptions, register, socket_frames


@register
class UdpSendmmsg(UdpWriter):
    """The engine's sendmmsg back end: each send pins the messages where they are (no copy) and
    hands the span over a batch of up to 1024 at a time, resuming a partial call."""

    name = "udp-sendmmsg"
    order = 2
    summary = "kernel UDP socket, one sendmmsg(2) per fan-out (the transmit engine, in C)"

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        engine.require(self.name)
        self._engine = engine.mmsg(self.sock.fileno())
        self._width = len(self.sockaddrs) // len(target.ports)
        """Bytes of one reader's sockaddr."""

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """The span in one sendmmsg (per 1024), each message to its reader's address."""
        width = self._width
        pool = engine.pinned(messages[start:stop], self.sockaddrs[start * width : stop * width])
        return self._engine.send(pool, 0, stop - start, min(stop - start, MAX_BATCH))

    def replay_frames(self, messages: Sequence[Message]) -> Frames | None:
        """The messages where they are, a whole fan-out (up to 1024) per sendmmsg unpaced."""
        return socket_frames(self.sock, messages, self.delivered_size, self.sockaddrs, len(messages))
