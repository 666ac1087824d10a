"""Type stub of the ``_checksum`` C extension (rawpacer/_checksum.c)."""

import mmap
from collections.abc import Sequence

from _typeshed import ReadableBuffer, WriteableBuffer

def ones_sum(data: bytes | bytearray | memoryview | mmap.mmap, initial: int = 0, /) -> int: ...
def stamp_sequence(buffer: bytearray | memoryview | mmap.mmap, stride: int, offset: int, sequence: int, /) -> None: ...
def datagram_hash(data: bytes | bytearray | memoryview | mmap.mmap, /) -> int: ...
def compose_udp(
    rows: WriteableBuffer,
    headers: ReadableBuffer,
    bases: ReadableBuffer,
    messages: Sequence[ReadableBuffer],
    start: int,
    payload_len: int,
    checksum_at: int,
    /,
) -> None: ...
