"""``ip-raw``: hand-built IP/UDP packets on a raw socket with IP_HDRINCL (IPv6: IPV6_HDRINCL); the
kernel adds the link header."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

from rawpacer.engine import Frames, sockaddrs
from rawpacer.target import Target
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import Knobs, Message, WriterOptions, register, socket_frames

IPV6_HDRINCL = getattr(socket, "IPV6_HDRINCL", 36)
"""The IPv6 counterpart of IP_HDRINCL (linux/in6.h, Linux 4.5 and later); Python names it from 3.12."""


@register
class IpRawWriter(RawWriter):
    """SOCK_RAW(IPPROTO_RAW) + IP_HDRINCL: one ``sendto(packet, (dst_ip, 0))`` per packet or fragment.

    The kernel routes each packet, adds the Ethernet header, rewrites the IPv4 checksum and picks
    an IP id when rawpacer's is 0 (raw(7)); rawpacer never gives a fragment id 0.
    """

    name = "ip-raw"
    order = 12
    summary = "raw IP socket with IP_HDRINCL / IPV6_HDRINCL, hand-built IP/UDP, kernel adds the link header"
    ethernet = False
    tags_vlan = False

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        ipv6 = self.family.version == 6
        with self.opening():
            self.sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            self.own(self.sock.close)
            if ipv6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
            else:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        self.address = (target.dst_ip, 0)

    def stamping_socket(self) -> socket.socket | None:
        """The IP_HDRINCL socket: one send per frame, in order."""
        return self.unless_fragmenting(self.sock)

    def replay_frames(self, messages: Sequence[Message]) -> Frames | None:
        """Each reader's IP packet, one sendto() each (sendmmsg for a paced burst) to the readers' address."""
        frames = self.frames_built_once(messages)
        if frames is None:
            return None
        return socket_frames(self.sock, frames, self.delivered_size, sockaddrs(self.target.dst_ip, [0] * len(frames)))

    def emitter(self) -> Callable[[bytes], object]:
        """One ``sendto`` per IPv4 packet (each fragment its own) on the IP_HDRINCL socket."""
        sendto, address = self.sock.sendto, self.address
        return lambda packet: sendto(packet, address)
