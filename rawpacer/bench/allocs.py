"""B/op and allocs/op of a writer's op, measured in a separate short pass so timing is unaffected.

Preferred method: counting wrappers around CPython's raw/mem/object allocators (the optional
extension ``rawpacer._alloccount``, built at install time): every malloc/calloc/realloc the interpreter
makes while the pass runs, in any thread, with its requested size. That is Go's ``-benchmem``
(``TotalAlloc`` and ``Mallocs`` deltas / N) for the Python heap. Without it (no C compiler at install
time) it falls back to tracemalloc's peak growth per op (bytes only; allocs/op unknown).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

_alloccount: ModuleType | None
try:
    from rawpacer import _alloccount
except ImportError:  # built without a C compiler: bytes only, from tracemalloc
    _alloccount = None


@dataclass(frozen=True)
class AllocFigures:
    """Per-op allocation figures and the method that produced them."""

    bytes_per_op: float | None
    allocs_per_op: float | None
    method: str


def measure(op: Callable[[], object], ops: int) -> AllocFigures:
    """Run ``op`` ``ops`` times with allocations counted; per-op bytes and allocation count."""
    if _alloccount is None:
        return _measure_tracemalloc(op, ops)
    _alloccount.install()
    try:
        count0, bytes0 = _alloccount.read()
        for _ in range(ops):
            op()
        count1, bytes1 = _alloccount.read()
    finally:
        _alloccount.uninstall()
    return AllocFigures((bytes1 - bytes0) / ops, (count1 - count0) / ops, "allocator-hooks")


def _measure_tracemalloc(op: Callable[[], object], ops: int) -> AllocFigures:
    """Fallback: mean peak growth of traced memory during one op (allocations not counted)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        total = 0
        for _ in range(ops):
            current = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            op()
            total += tracemalloc.get_traced_memory()[1] - current
    finally:
        if started:
            tracemalloc.stop()
    return AllocFigures(total / ops, None, "tracemalloc-peak")
