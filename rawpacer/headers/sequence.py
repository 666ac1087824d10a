"""The sequence field a stream datagram starts with: which fan-out of its port's stream it is.

Stream mode replays each port's message; 8 bytes at the payload's start tell datagram k from k+1,
so the readers can count reordering (RFC 4737) and duplicates per port. The field is chosen so
the UDP checksum does not depend on it: prebuilt frames are re-stamped without touching their
headers. ``rawpacer/_sequence.h`` is its C twin (the readers' loop and the pacer's send loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rawpacer.errors import require

if TYPE_CHECKING:
    import numpy as np

SEQUENCE_BYTES = 8
"""A stream datagram's first bytes: its sequence number (48 bits, big-endian) and a check word."""
MAX_SEQUENCE = (1 << 48) - 1
"""The largest sequence the 48-bit field holds."""


def sequence_bytes(sequence: int) -> bytes:
    """The 8 bytes that carry ``sequence`` at the start of a stream datagram.

    Bytes 0-5 are the sequence, bytes 6-7 the one's complement of the one's-complement sum of their
    three 16-bit words, so the four words always sum to 0xFFFF (negative zero): the Internet
    checksum (RFC 1071) of a UDP datagram is the same whatever sequence it carries, and a writer
    replaying prebuilt frames rewrites these 8 bytes without touching the checksum (RFC 1624's
    incremental update with a zero difference).
    """
    require(0 <= sequence <= MAX_SEQUENCE, f"sequence {sequence} is out of range 0-{MAX_SEQUENCE}")
    total = (sequence >> 32) + ((sequence >> 16) & 0xFFFF) + (sequence & 0xFFFF)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (sequence << 16 | (~total & 0xFFFF)).to_bytes(SEQUENCE_BYTES, "big")


def sequence_of(data: bytes | bytearray | memoryview) -> int | None:
    """The sequence a datagram's first 8 bytes carry, or None when they are no sequence (short, or
    the check word does not match)."""
    if len(data) < SEQUENCE_BYTES:
        return None
    head = bytes(data[:SEQUENCE_BYTES])
    sequence = int.from_bytes(head[:6], "big")
    return sequence if sequence_bytes(sequence) == head else None


def python_stamp_sequence(rows: np.ndarray, stride: int, offset: int, sequence: int) -> None:
    """numpy twin of ``rawpacer._checksum.stamp_sequence``: the field at ``offset`` of every
    ``stride``-byte row of the writable buffer ``rows``, one assignment for a whole fan-out."""
    require(
        0 <= offset and offset + SEQUENCE_BYTES <= stride,
        f"{SEQUENCE_BYTES} bytes at {offset} do not fit {stride}-byte rows",
    )
    import numpy as np  # here, not above: the reader process reads sequences and never loads numpy

    flat = np.frombuffer(rows, np.uint8)
    table = flat[: len(flat) // stride * stride].reshape(-1, stride)
    table[:, offset : offset + SEQUENCE_BYTES] = np.frombuffer(sequence_bytes(sequence), np.uint8)


def _pick() -> Callable[[Any, int, int, int], None]:
    try:
        from rawpacer._checksum import stamp_sequence as c_stamp_sequence
    except ImportError:
        return python_stamp_sequence
    return c_stamp_sequence


stamp_sequence = _pick()
"""``stamp_sequence(rows, stride, offset, sequence)``: ``sequence``'s field at ``offset`` of every
``stride``-byte row of a writable buffer (a fan-out's messages, or a writer's frames), in C with no
Python object made when ``rawpacer._checksum`` is built (the op loop calls it once per fan-out)."""
