"""sendmmsg(2) through ctypes: one system call sends a whole fan-out.

The mmsghdr/iovec/sockaddr_in arrays are built once per destination list; each op only rewrites
the iovec base pointers, and only when the message buffers are not the same objects as last time
(a ReaderSet's ``messages`` slots never move, so the steady state rewrites nothing).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from collections.abc import Sequence

import numpy as np

UIO_MAXIOV = 1024  # the kernel's cap on messages per sendmmsg call

_libc = ctypes.CDLL(None, use_errno=True)
_sendmmsg = _libc.sendmmsg
_sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
_sendmmsg.restype = ctypes.c_int


class SockaddrIn(ctypes.Structure):
    """``struct sockaddr_in``; port and address are stored in network byte order."""

    _fields_ = [
        ("sin_family", ctypes.c_ushort),
        ("sin_port", ctypes.c_uint8 * 2),
        ("sin_addr", ctypes.c_uint8 * 4),
        ("sin_zero", ctypes.c_uint8 * 8),
    ]


class SockaddrIn6(ctypes.Structure):
    """``struct sockaddr_in6``; port and address in network byte order."""

    _fields_ = [
        ("sin6_family", ctypes.c_ushort),
        ("sin6_port", ctypes.c_uint8 * 2),
        ("sin6_flowinfo", ctypes.c_uint32),
        ("sin6_addr", ctypes.c_uint8 * 16),
        ("sin6_scope_id", ctypes.c_uint32),
    ]


def sockaddrs(dst_ip: str, ports: Sequence[int]) -> ctypes.Array[SockaddrIn] | ctypes.Array[SockaddrIn6]:
    """One socket address per port on ``dst_ip``, of the address's family (IPv4 or IPv6)."""
    family = socket.AF_INET6 if ":" in dst_ip else socket.AF_INET
    packed = socket.inet_pton(family, dst_ip)
    if family == socket.AF_INET6:
        table6 = (SockaddrIn6 * len(ports))()
        for entry6, port in zip(table6, ports):
            entry6.sin6_family, entry6.sin6_port[:], entry6.sin6_addr[:] = family, port.to_bytes(2, "big"), packed
        return table6
    table = (SockaddrIn * len(ports))()
    for entry, port in zip(table, ports):
        entry.sin_family, entry.sin_port[:], entry.sin_addr[:] = family, port.to_bytes(2, "big"), packed
    return table


class Iovec(ctypes.Structure):
    """``struct iovec``."""

    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class MsgHdr(ctypes.Structure):
    """``struct msghdr``."""

    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class MMsgHdr(ctypes.Structure):
    """``struct mmsghdr``."""

    _fields_ = [("msg_hdr", MsgHdr), ("msg_len", ctypes.c_uint)]


def buffer_address(buffer: bytes | bytearray | memoryview) -> tuple[int, object]:
    """(address, object to keep alive) of a contiguous buffer, without holding an export on it."""
    if isinstance(buffer, bytes):
        return ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value or 0, buffer
    try:
        view = (ctypes.c_char * 1).from_buffer(buffer)
    except TypeError:
        copy = bytes(buffer)
        return buffer_address(copy)
    address = ctypes.addressof(view)
    del view
    return address, buffer


class SendBatch:
    """Prebuilt sendmmsg arrays for one fan-out: datagram i goes to ``ports[i]`` on ``dst_ip`` (IPv4 or IPv6)."""

    def __init__(self, dst_ip: str, ports: Sequence[int]) -> None:
        count = len(ports)
        self.count = count
        self._addrs = sockaddrs(dst_ip, ports)
        self._iovs = (Iovec * count)()
        self._msgs = (MMsgHdr * count)()
        size = ctypes.sizeof(self._addrs._type_)
        for i in range(count):
            hdr = self._msgs[i].msg_hdr
            hdr.msg_name = ctypes.addressof(self._addrs) + i * size
            hdr.msg_namelen = size
            hdr.msg_iov = ctypes.addressof(self._iovs[i])
            hdr.msg_iovlen = 1
        self._iov_table = np.frombuffer(memoryview(self._iovs).cast("B"), dtype=np.uint64).reshape(count, 2)
        self._base = ctypes.addressof(self._msgs)
        self._stride = ctypes.sizeof(MMsgHdr)
        self._buffers: list[object] = []
        self._keep: list[object] = []

    def set_buffers(
        self, messages: Sequence[bytes | bytearray | memoryview], start: int = 0, stop: int | None = None
    ) -> None:
        """Point iovec i at ``messages[i]`` (a no-op when ``messages[start:stop]`` are the same objects
        as last time, so a paced burst of one costs one identity check, not a whole fan-out's)."""
        if len(messages) != self.count:
            raise ValueError(f"{len(messages)} messages for {self.count} destinations")
        stop = self.count if stop is None else stop
        last = self._buffers
        if len(last) == self.count and all(messages[i] is last[i] for i in range(start, stop)):
            return
        pairs = [buffer_address(m) for m in messages]
        self._iov_table[:, 0] = [address for address, _ in pairs]
        self._iov_table[:, 1] = [len(m) for m in messages]
        self._keep = [keep for _, keep in pairs]
        self._buffers = list(messages)

    def send(self, fd: int, start: int = 0, stop: int | None = None, flags: int = 0) -> int:
        """Send prepared datagrams ``start .. stop-1`` (default: all), resuming partial sends;
        OSError with errno on failure."""
        stop = self.count if stop is None else stop
        sent = start
        while sent < stop:
            chunk = min(stop - sent, UIO_MAXIOV)
            done = _sendmmsg(fd, self._base + sent * self._stride, chunk, flags)
            if done < 0:
                err = ctypes.get_errno()
                if err == errno.EINTR:
                    continue
                raise OSError(err, f"sendmmsg: {os.strerror(err)}")
            sent += done
        return sent - start

    def forget(self) -> None:
        """Drop the references to the last message buffers (so their owner can be closed)."""
        self._buffers = []
        self._keep = []
