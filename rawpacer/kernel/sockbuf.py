"""Socket buffer sizes beyond ``net.core.[rw]mem_max``: the FORCE options socket(7) gives root."""

from __future__ import annotations

import socket

SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def set_buffer_size(sock: socket.socket, direction: str, size: int) -> int:
    """Set the socket's send (``"snd"``) or receive (``"rcv"``) buffer; return what the kernel gave.

    As root the FORCE variant is used: ``net.core.[rw]mem_max`` caps the plain option and cannot
    be raised from inside a network namespace. Without root the plain option is capped silently.
    """
    plain, force = (socket.SO_SNDBUF, SO_SNDBUFFORCE) if direction == "snd" else (socket.SO_RCVBUF, SO_RCVBUFFORCE)
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, plain, size)
    return sock.getsockopt(socket.SOL_SOCKET, plain)
