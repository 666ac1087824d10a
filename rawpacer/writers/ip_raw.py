"""``ip-raw``: hand-built IPv4/UDP packets on AF_INET/SOCK_RAW with IP_HDRINCL; the kernel adds the link header."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from rawpacer.target import Target
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import WriterOptions, register


@register
class IpRawWriter(RawWriter):
    """SOCK_RAW(IPPROTO_RAW) + IP_HDRINCL: one ``sendto(packet, (dst_ip, 0))`` per packet or fragment.

    The kernel routes each packet, adds the Ethernet header, rewrites the IPv4 checksum and picks
    an IP id when rawpacer's is 0 (unfragmented DF datagrams).
    """

    name = "ip-raw"
    order = 12
    summary = "AF_INET raw socket with IP_HDRINCL, hand-built IPv4/UDP, kernel adds the link header"
    ethernet = False

    def __init__(self, target: Target, options: WriterOptions) -> None:
        super().__init__(target, options)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        self.address = (target.dst_ip, 0)

    def send(self, messages: Sequence[bytes | memoryview]) -> int:
        """One ``sendto`` per IPv4 packet (each fragment its own) on the IP_HDRINCL socket."""
        self.check_fanout(messages)
        sendto, address, record = self.sock.sendto, self.address, self.record
        for index, message in enumerate(messages):
            for packet in self.frames_for(index, message):
                sendto(packet, address)
                record(packet)
        return len(messages)

    def _close(self) -> None:
        self.sock.close()
