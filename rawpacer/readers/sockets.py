"""The reader sockets: bound per port on the readers' address (IPv4 or IPv6), timestamps, drop counters.

Runs in the reader process, inside the readers' namespace.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from rawpacer.kernel.sockbuf import set_buffer_size
from rawpacer.kernel.timestamping import SO_TIMESTAMPNS
from rawpacer.limits import MAX_PORT
from rawpacer.readers.nofile import ensure_nofile

# SO_MEMINFO (socket(7), since Linux 4.6) reads a socket's memory counters as u32[SK_MEMINFO_VARS];
# index SK_MEMINFO_DROPS is sk_drops, the same counter as the ``drops`` column of /proc/net/udp:
# datagrams the kernel threw away because the receive buffer was full (include/uapi/linux/sock_diag.h).
SO_MEMINFO = 55
SK_MEMINFO_VARS = 9
SK_MEMINFO_DROPS = 8
_MEMINFO = struct.Struct(f"={SK_MEMINFO_VARS}I")


def family_of(ip: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address, AF_INET for an IPv4 one."""
    return socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET


def bind(ip: str, count: int, first_port: int, rcvbuf: int) -> tuple[list[socket.socket], list[int]]:
    """``count`` non-blocking UDP sockets on ``ip``, from ``first_port`` up; a port in use is skipped."""
    ensure_nofile(count)
    family = family_of(ip)
    socks: list[socket.socket] = []
    ports: list[int] = []
    port = first_port
    try:
        while len(socks) < count:
            if port > MAX_PORT:
                raise OSError(f"only {len(socks)} of {count} reader ports could be bound on {ip}")
            sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((ip, port))
            except OSError:
                sock.close()
                port += 1
                continue
            set_buffer_size(sock, "rcv", rcvbuf)
            sock.setblocking(False)
            socks.append(sock)
            ports.append(port)
            port += 1
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks, ports


def set_timestamps(socks: list[socket.socket | None], on: bool) -> None:
    """Turn kernel RX timestamps on or off on every open socket."""
    for sock in socks:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, int(on))


def drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped at this socket since it was created (its ``sk_drops``)."""
    values: tuple[int, ...] = _MEMINFO.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size))
    return values[SK_MEMINFO_DROPS]
