"""The AF_PACKET socket the link-layer writers send on (packet(7))."""

from __future__ import annotations

import socket


def open_packet_socket(ifname: str) -> socket.socket:
    """An AF_PACKET/SOCK_RAW socket bound to ``ifname`` (this namespace) that sends and never receives.

    Protocol 0 means the kernel hands it no received frames (packet(7)).
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, 0))
    except OSError:
        sock.close()
        raise
    return sock
