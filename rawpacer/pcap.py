"""Record the frames a raw writer sent to a pcap file (dpkt's pcap Writer) that tcpdump and scapy read.

Ethernet frames are written as LINKTYPE_ETHERNET (1). ``ip-raw`` hands the kernel bare IPv4
packets, so its file is LINKTYPE_RAW (101): each record starts at the IPv4 header, exactly the
bytes rawpacer built (the kernel adds the link header on the way out, and fills an IP id of 0).
"""

from __future__ import annotations

import time

import dpkt

from rawpacer.errors import UsageError
from rawpacer.headers.checksum import BytesLike

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
SNAPLEN = 262144


class PcapRecorder:
    """An open pcap file for one writer's frames; ``record`` each one sent, ``close`` at the end."""

    def __init__(self, path: str, *, ethernet: bool = True) -> None:
        try:
            self._file = open(path, "wb")  # noqa: SIM115 - open for the writer's life, closed by close()
        except OSError as exc:
            raise UsageError(f"pcap {path!r} cannot be written: {exc.strerror}") from None
        self.path = path
        self.linktype = LINKTYPE_ETHERNET if ethernet else LINKTYPE_RAW
        self._writer = dpkt.pcap.Writer(self._file, snaplen=SNAPLEN, linktype=self.linktype, nano=True)
        self.count = 0

    def record(self, frame: BytesLike) -> None:
        """Append one frame with the current time."""
        self._writer.writepkt_time(bytes(frame), time.time())
        self.count += 1

    def close(self) -> None:
        """Flush and close the file. Safe to call twice."""
        if not self._file.closed:
            self._file.close()


def read_pcap(path: str) -> tuple[int, list[bytes]]:
    """``(linktype, frames)`` of a pcap file, read back with dpkt."""
    with open(path, "rb") as handle:
        reader = dpkt.pcap.Reader(handle)
        return reader.datalink(), [bytes(buf) for _, buf in reader]
