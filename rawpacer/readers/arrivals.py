"""Moving an op's arrivals from the reader process to the parent: one memfd, mapped, no copy.

Layout: ``rx_ns`` int64[n], then ``slot`` int32[n], then ``match`` uint8[n] (the int64 array
first keeps every array aligned). The child writes the counter's buffers into a fresh memfd and
passes its descriptor with the RESULT message; the parent maps it and views it as numpy arrays.
"""

from __future__ import annotations

import mmap
import os

from rawpacer.readers.tally import Arrivals

BYTES_PER_ARRIVAL = 8 + 4 + 1


def write(buffers: tuple[memoryview, memoryview, memoryview]) -> int:
    """A memfd holding the arrival arrays (the caller sends it, then closes it)."""
    fd = os.memfd_create("rawpacer-arrivals", os.MFD_CLOEXEC)
    try:
        for buffer in buffers:
            view = buffer.cast("B")
            while view:
                view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    return fd


def read(fd: int, count: int) -> Arrivals:
    """Map the memfd ``fd`` (then close it) as ``count`` arrivals; the arrays keep the mapping alive."""
    import numpy as np  # the parent's side only: the reader process (``write``) never loads numpy

    try:
        mapped = mmap.mmap(fd, count * BYTES_PER_ARRIVAL, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    rx_ns = np.frombuffer(mapped, dtype=np.int64, count=count, offset=0)
    slot = np.frombuffer(mapped, dtype=np.int32, count=count, offset=8 * count)
    match = np.frombuffer(mapped, dtype=np.bool_, count=count, offset=12 * count)
    return Arrivals(rx_ns, slot, match)


def empty() -> Arrivals:
    """No arrivals (an op with timestamps on that received nothing)."""
    import numpy as np  # the parent's side only, as in ``read``

    return Arrivals(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.bool_))
