"""``packet-raw``: hand-built Ethernet/IPv4/UDP frames, one ``send`` each on an AF_PACKET socket."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

from rawpacer import engine
from rawpacer.engine import Engine, Frames
from rawpacer.target import Target
from rawpacer.writers._packet_socket import open_packet_socket
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import Knobs, Message, WriterOptions, register, socket_frames


@register
class PacketRawWriter(RawWriter):
    """AF_PACKET/SOCK_RAW: a FrameTemplate per port stamped per message, one send() per frame."""

    name = "packet-raw"
    order = 10
    summary = "AF_PACKET raw socket, hand-built Ethernet/IPv4/UDP frames, one send per frame"

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        with self.opening():
            self.sock = open_packet_socket(target.link.ifname)
            self.own(self.sock.close)

    def stamping_socket(self) -> socket.socket | None:
        """The AF_PACKET socket: one send per frame, in order."""
        return self.unless_fragmenting(self.sock)

    def replay_frames(self, messages: Sequence[Message]) -> Frames | None:
        """Each reader's stamped frame, one send() each (sendmmsg for a paced burst) on the bound AF_PACKET socket."""
        frames = self.frames_built_once(messages)
        return None if frames is None else socket_frames(self.sock, frames, self.delivered_size)

    def frame_engine(self) -> Engine | None:
        """The engine's sendmmsg back end on the bound AF_PACKET socket (one send() a frame at burst 1)."""
        return engine.mmsg(self.sock.fileno()) if engine.BUILT else None

    def emitter(self) -> Callable[[bytes], object]:
        """The AF_PACKET socket's ``send``: one call per frame."""
        return self.sock.send
