"""``packet-ring``: frames through a PACKET_MMAP TX ring (the engine's TPACKET_V2 back end), one send() per batch."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from rawpacer import engine
from rawpacer.errors import DeliveryError
from rawpacer.kernel.tpacket import STALL_S, TxRing, fanout_frames
from rawpacer.target import Target
from rawpacer.writers._packet_socket import open_packet_socket
from rawpacer.writers._ring import RingWriter
from rawpacer.writers.base import Knobs, WriterOptions, check_count, register


@dataclass(frozen=True)
class RingKnobs(Knobs):
    """``frames``: ring slots (0: one fan-out's frames, at least 512); ``qdisc_bypass``: hand frames
    to the driver without the qdisc (PACKET_QDISC_BYPASS, on by default)."""

    frames: int = 0
    qdisc_bypass: bool = True

    def __post_init__(self) -> None:
        """The slot count is 0 (automatic) or positive."""
        check_count("ring frames", self.frames)


@register
class PacketRingWriter(RingWriter):
    """TPACKET_V2 TX ring: the engine copies each frame into its ring slot and one send() flushes a batch.

    A full ring is flushed and waited on, never overwritten (the engine's TPACKET back end).
    """

    name = "packet-ring"
    order = 11
    summary = "AF_PACKET PACKET_MMAP TX ring (TPACKET_V2), one send() flushes the fan-out"
    knobs_type = RingKnobs
    knobs: RingKnobs

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        with self.opening():
            self.sock = open_packet_socket(target.link.ifname)
            self.own(self.sock.close)
            wanted = len(target.ports) * self.frames_per_message
            frames = self.knobs.frames or fanout_frames(self.max_frame, wanted)
            self.ring = TxRing(self.sock, self.max_frame, frames, qdisc_bypass=self.knobs.qdisc_bypass)
            self.own(self.ring.close)
            self.engine = engine.tpacket(self.sock.fileno(), self.ring.map, self.ring.frame_size, self.ring.frame_nr)
            self.own(self.engine.close)

    def stamping_socket(self) -> socket.socket | None:
        """The ring's AF_PACKET socket: one send per frame, in order."""
        return self.unless_fragmenting(self.sock)

    def frame_room(self) -> int:
        """A ring slot's room, when that is less than the link takes."""
        return min(super().frame_room(), self.ring.max_frame)

    def _failure(self, exc: OSError) -> Exception:
        """A slot the kernel refused (TP_STATUS_WRONG_FORMAT) named, else the ring's own error."""
        if isinstance(exc, TimeoutError):
            return DeliveryError(
                f"packet-ring: the kernel took no TX ring slot for {STALL_S} s on {self.target.link.ifname}"
            )
        return self.ring.refused(exc) or DeliveryError(f"packet-ring: send() failed: {exc.strerror}")
