"""What the three standard writers share: one kernel UDP socket bound to the writer's address."""

from __future__ import annotations

import socket

from rawpacer import engine
from rawpacer.kernel.sockbuf import set_buffer_size
from rawpacer.target import Target
from rawpacer.writers.base import Knobs, Writer, WriterOptions

SNDBUF = 4 << 20


def open_udp_socket(target: Target, sndbuf: int = SNDBUF) -> socket.socket:
    """A blocking UDP socket of the target's family bound to (src_ip, sport) with a large send buffer, in
    this thread's namespace."""
    family = socket.AF_INET6 if target.ip_version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_buffer_size(sock, "snd", sndbuf)
        sock.bind((target.src_ip, target.sport))
    except BaseException:
        sock.close()
        raise
    return sock


class UdpWriter(Writer):
    """Base of the standard writers: the kernel builds the headers and fragments big messages."""

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        self.sock = open_udp_socket(target)
        self.own(self.sock.close)
        self.destinations = [(target.dst_ip, port) for port in target.ports]
        self.sockaddrs = engine.sockaddrs(target.dst_ip, target.ports)
        """The readers' addresses as the kernel takes them, back to back (the engine's sendmmsg)."""

    def stamping_socket(self) -> socket.socket | None:
        """The writer's UDP socket: one datagram per send, in order (the kernel fragments whole
        datagrams, one stamp each)."""
        return self.sock
