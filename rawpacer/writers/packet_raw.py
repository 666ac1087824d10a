"""``packet-raw``: hand-built Ethernet/IPv4/UDP frames, one ``send`` each on an AF_PACKET socket."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from rawpacer.target import Target
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import WriterOptions, register


def open_packet_socket(ifname: str) -> socket.socket:
    """An AF_PACKET/SOCK_RAW socket bound to ``ifname`` (this namespace) that sends and never receives."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, 0))
    except OSError:
        sock.close()
        raise
    return sock


@register
class PacketRawWriter(RawWriter):
    """AF_PACKET/SOCK_RAW: a FrameTemplate per port stamped per message, one send() per frame."""

    name = "packet-raw"
    order = 10
    summary = "AF_PACKET raw socket, hand-built Ethernet/IPv4/UDP frames, one send per frame"

    def __init__(self, target: Target, options: WriterOptions) -> None:
        super().__init__(target, options)
        self.sock = open_packet_socket(target.link.ifname)

    def send(self, messages: Sequence[bytes | memoryview]) -> int:
        """One ``send`` per stamped frame (each fragment its own) on the AF_PACKET socket."""
        self.check_fanout(messages)
        send, record = self.sock.send, self.record
        for index, message in enumerate(messages):
            for frame in self.frames_for(index, message):
                send(frame)
                record(frame)
        return len(messages)

    def _close(self) -> None:
        self.sock.close()
