"""The Internet (RFC 1071) ones'-complement sum, from the C extension when built, else pure Python.

``ones_sum(data, initial)`` is the folded sum (0..0xFFFF) of ``data`` read as big-endian 16-bit
words (odd length padded with a zero byte) plus ``initial``; it is 0 only when everything is 0.
A header's checksum is ``checksum(...) == ~ones_sum(...) & 0xFFFF``. ``IMPLEMENTATION`` says which
one is in use: ``"c"`` (``rawpacer._checksum``) or ``"python"``; both give the same result.
``RAWPACER_CHECKSUM=python`` in the environment picks the pure-Python one even where the C one is
built: what a machine without a compiler runs, to measure it (benchmarks/headers_bench.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

BytesLike = bytes | bytearray | memoryview

_MOD = 0xFFFF
CHECKSUM_ENV = "RAWPACER_CHECKSUM"
"""The environment variable that picks the implementation at import: ``python`` forces the fallback."""


def fold(total: int) -> int:
    """Reduce a non-negative sum to 0..0xFFFF with the same residue mod 0xFFFF (0 only for 0)."""
    return (total - 1) % _MOD + 1 if total else 0


def python_ones_sum(data: BytesLike, initial: int = 0) -> int:
    """Pure-Python ones_sum: 2**16 == 1 (mod 0xFFFF), so the whole buffer as one integer will do."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    n = int.from_bytes(data, "big")
    return (initial + n % _MOD + _MOD - 1) % _MOD + 1 if n else fold(initial)


def _pick() -> tuple[Callable[..., int], Literal["c", "python"]]:
    if os.environ.get(CHECKSUM_ENV) == "python":
        return python_ones_sum, "python"
    try:
        from rawpacer._checksum import ones_sum as c_ones_sum
    except ImportError:
        return python_ones_sum, "python"
    return c_ones_sum, "c"


ones_sum, IMPLEMENTATION = _pick()


def checksum(data: BytesLike, initial: int = 0) -> int:
    """The Internet checksum of ``data`` with ``initial`` (e.g. a pseudo-header sum) folded in."""
    return ~ones_sum(data, initial) & 0xFFFF
