"""Type stub of the ``_checksum`` C extension (rawpacer/_checksum.c)."""

import mmap

def ones_sum(data: bytes | bytearray | memoryview | mmap.mmap, initial: int = 0, /) -> int: ...
