"""Equal-length fan-outs stamped as arrays: one frame per row of any 2-D byte array (TX ring slots,
UMEM chunks, a staging array), headers and checksums written a column range at a time.

With the payload length fixed, every port's header bytes are fixed too and only the UDP checksum
changes from one fan-out to the next: it is a fixed part (pseudo-header + UDP header, summed once
by the template) plus the payload's sum. One C call composes a whole span (``_checksum.compose_udp``:
headers, payloads and checksums, no intermediate copy); the numpy composition is its twin.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence

import numpy as np

from rawpacer.headers import FrameTemplate
from rawpacer.headers.checksum import BytesLike, ones_sum


class Batch:
    """Every port's header bytes for one payload length, and each UDP checksum's fixed part, as the
    templates give them (``headers(n)``, ``udp_sum_base(n)``, ``udp_checksum_offset``): any IP
    version, tagged or not."""

    def __init__(self, templates: Sequence[FrameTemplate], payload_len: int) -> None:
        first = templates[0]
        self.payload_len = payload_len
        self.header_len = first.header_len
        self.checksum_at = first.udp_checksum_offset
        joined = b"".join(t.headers(payload_len) for t in templates)
        self.headers = np.frombuffer(joined, np.uint8).reshape(-1, self.header_len)
        self.bases = [t.udp_sum_base(payload_len) for t in templates]
        self._bases = array("I", self.bases)

    @property
    def frame_len(self) -> int:
        """Bytes of each frame: the headers and the (possibly trimmed) payload."""
        return self.header_len + self.payload_len

    def compose(self, rows: np.ndarray, messages: Sequence[BytesLike], start: int, stop: int) -> None:
        """The frames of ``messages[start:stop]`` (all the same length, trimmed to ``payload_len``)
        into the first ``frame_len`` bytes of ``rows``, one frame per row."""
        if _compose_udp is not None and rows.flags.c_contiguous and rows.shape[1] == self.frame_len:
            _compose_udp(rows, self.headers, self._bases, messages, start, self.payload_len, self.checksum_at)
        else:
            self.python_compose(rows, messages, start, stop)

    def python_compose(self, rows: np.ndarray, messages: Sequence[BytesLike], start: int, stop: int) -> None:
        """``compose`` in numpy: the twin of the C call, and the way for rows wider than a frame."""
        span, payload_len, head, at = stop - start, self.payload_len, self.header_len, self.checksum_at
        chosen = messages[start:stop]
        size = len(chosen[0])
        payloads = np.frombuffer(b"".join(chosen), np.uint8).reshape(span, size)[:, :payload_len]
        bases = self.bases[start:stop]
        if payload_len == size:
            sums = [ones_sum(m, b) ^ 0xFFFF or 0xFFFF for m, b in zip(chosen, bases)]
        else:
            sums = [ones_sum(p, b) ^ 0xFFFF or 0xFFFF for p, b in zip(payloads, bases)]
        rows[:, :head] = self.headers[start:stop]
        rows[:, at : at + 2] = np.array(sums, ">u2").view(np.uint8).reshape(span, 2)
        rows[:, head : head + payload_len] = payloads


def _compiled() -> Callable[..., None] | None:
    try:
        from rawpacer._checksum import compose_udp
    except ImportError:  # built without a compiler: numpy composes
        return None
    return compose_udp


_compose_udp = _compiled()


class Batches(dict[int, Batch]):
    """A writer's Batch per payload length, each built the first time that length is sent."""

    def __init__(self, templates: Sequence[FrameTemplate]) -> None:
        super().__init__()
        self.templates = templates

    def __missing__(self, payload_len: int) -> Batch:
        batch = self[payload_len] = Batch(self.templates, payload_len)
        return batch
