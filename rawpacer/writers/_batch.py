"""Equal-length fan-outs stamped as arrays: one frame per row of any 2-D byte array (TX ring slots,
UMEM chunks, a staging array), headers and checksums written a column range at a time.

With the payload length fixed, every port's 42 header bytes are fixed too and only the UDP checksum
changes from one fan-out to the next: it is a fixed part (pseudo-header + UDP header, summed once)
plus the payload's sum, one C call per message.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rawpacer.headers import ETH_HLEN, IPV4_HLEN, UDP_HLEN, FrameTemplate
from rawpacer.headers.checksum import BytesLike, ones_sum

HEADERS = ETH_HLEN + IPV4_HLEN + UDP_HLEN
"""Bytes before the payload of an Ethernet/IPv4/UDP frame."""
UDP_CSUM = ETH_HLEN + IPV4_HLEN + 6
"""Offset of the UDP checksum in the frame."""


class Batch:
    """Every port's 42 header bytes for one payload length, and each UDP checksum's fixed part."""

    def __init__(self, templates: Sequence[FrameTemplate], payload_len: int) -> None:
        frames = [t.stamp(bytes(payload_len)) for t in templates]
        self.payload_len = payload_len
        self.headers = np.frombuffer(b"".join(f[:HEADERS] for f in frames), np.uint8).reshape(-1, HEADERS)
        ip = ETH_HLEN
        pseudo_and_udp = (
            f[ip + 12 : ip + 20] + b"\0\x11" + f[ip + 24 : ip + 26] + f[ip + 20 : ip + 26] for f in frames
        )
        self.bases = [ones_sum(part) for part in pseudo_and_udp]

    @property
    def frame_len(self) -> int:
        """Bytes of each frame: the headers and the (possibly trimmed) payload."""
        return HEADERS + self.payload_len

    def compose(self, rows: np.ndarray, messages: Sequence[BytesLike], start: int, stop: int) -> None:
        """The frames of ``messages[start:stop]`` (all the same length, trimmed to ``payload_len``)
        into the first ``frame_len`` bytes of ``rows``, one frame per row."""
        span, payload_len = stop - start, self.payload_len
        chosen = messages[start:stop]
        size = len(chosen[0])
        payloads = np.frombuffer(b"".join(chosen), np.uint8).reshape(span, size)[:, :payload_len]
        bases = self.bases[start:stop]
        if payload_len == size:
            sums = [ones_sum(m, b) ^ 0xFFFF or 0xFFFF for m, b in zip(chosen, bases)]
        else:
            sums = [ones_sum(p, b) ^ 0xFFFF or 0xFFFF for p, b in zip(payloads, bases)]
        rows[:, :HEADERS] = self.headers[start:stop]
        rows[:, UDP_CSUM : UDP_CSUM + 2] = np.array(sums, ">u2").view(np.uint8).reshape(span, 2)
        rows[:, HEADERS : HEADERS + payload_len] = payloads


class Batches(dict[int, Batch]):
    """A writer's Batch per payload length, each built the first time that length is sent."""

    def __init__(self, templates: Sequence[FrameTemplate]) -> None:
        super().__init__()
        self.templates = templates

    def __missing__(self, payload_len: int) -> Batch:
        batch = self[payload_len] = Batch(self.templates, payload_len)
        return batch
