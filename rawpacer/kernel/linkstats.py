"""Every interface's ``rtnl_link_stats64`` (include/uapi/linux/if_link.h) in this thread's namespace,
read over a raw rtnetlink dump: the reader side's diagnosis and the device under test both use it."""

from __future__ import annotations

import socket
import struct

LINK_STATS = [
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "multicast",
    "collisions",
    "rx_length_errors",
    "rx_over_errors",
    "rx_crc_errors",
    "rx_frame_errors",
    "rx_fifo_errors",
    "rx_missed_errors",
    "tx_aborted_errors",
    "tx_carrier_errors",
    "tx_fifo_errors",
    "tx_heartbeat_errors",
    "tx_window_errors",
    "rx_compressed",
    "tx_compressed",
    "rx_nohandler",
    "rx_otherhost_dropped",
]
"""struct rtnl_link_stats64, in order (rx_otherhost_dropped since Linux 5.19)."""

_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_NLA = struct.Struct("=HH")
RTM_NEWLINK, RTM_GETLINK, NLMSG_DONE, NLMSG_ERROR = 16, 18, 3, 2
IFLA_IFNAME, IFLA_STATS64 = 3, 23
NLM_F_REQUEST_DUMP = 0x1 | 0x300


def _nlas(data: bytes, offset: int, end: int) -> dict[int, bytes]:
    attrs = {}
    while offset + _NLA.size <= end:
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size:
            break
        attrs[kind & 0x3FFF] = data[offset + _NLA.size : offset + length]
        offset += (length + 3) & ~3
    return attrs


def link_stats() -> dict[str, dict[str, int]]:
    """Every interface of this thread's namespace: its rtnl_link_stats64 counters by name."""
    links: dict[str, dict[str, int]] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        body = _IFINFO.pack(0, 0, 0, 0, 0)
        sock.send(_NLMSG.pack(_NLMSG.size + len(body), RTM_GETLINK, NLM_F_REQUEST_DUMP, 1, 0) + body)
        while True:
            data = sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind, _, _, _ = _NLMSG.unpack_from(data, offset)
                if kind in (NLMSG_DONE, NLMSG_ERROR) or length < _NLMSG.size:
                    return links
                if kind == RTM_NEWLINK:
                    attrs = _nlas(data, offset + _NLMSG.size + _IFINFO.size, offset + length)
                    name = attrs.get(IFLA_IFNAME, b"?").rstrip(b"\0").decode()
                    raw = attrs.get(IFLA_STATS64, b"")
                    values = struct.unpack_from(f"={len(raw) // 8}Q", raw)
                    links[name] = dict(zip(LINK_STATS, values))
                offset += (length + 3) & ~3
