"""An op's ``OpResult`` across the wire as one compact binary verdict: no JSON on the op's hot path.

The agent sends what its ``ReaderSet`` returned; the controller rebuilds the ``OpResult`` with its
own ``sent``, wait and op times (those are timed where the op is driven). The blob is, in a row:
the op's ``Counts`` as int64s and the other scalar fields little-endian in ``OpResult``'s declaration
order (``VERDICT``, some 160 bytes), then each deviating port's ``PortTally`` as int64s, then the arrivals' rx_ns, slot and
match arrays. The message header says only how many deviations and arrivals follow.
``reader_first_rt_ns`` is the first take moved onto the agent's CLOCK_REALTIME, the clock the
offset is measured on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields

import numpy as np

from rawpacer.readers import Arrivals, Counts, OpResult, PortTally
from rawpacer.readers.counts import NAMES

_LOCAL = ("sent", "wait_s", "op_s")
"""OpResult fields the controller fills itself."""
_APART = ("mode", "counts", "deviations", "arrivals", "lengths")
"""OpResult fields that travel outside its packed scalars (the header, the counts first as int64s,
the rows, the arrays), or not at all: per-length counts belong to shaped streams, which remote
readers refuse."""
_CODES = {"int": "q", "float": "d", "bool": "?"}
SCALARS = tuple(f.name for f in fields(OpResult) if f.name not in _LOCAL + _APART)
if any(str(f.type) not in _CODES for f in fields(OpResult) if f.name in SCALARS):  # pragma: no cover
    raise TypeError("an OpResult field is neither int, float nor bool: teach rawpacer.remote.outcome its wire form")
VERDICT = struct.Struct(
    "<" + "q" * len(NAMES) + "".join(_CODES[str(f.type)] for f in fields(OpResult) if f.name in SCALARS) + "q"
)  # the Counts, the scalars, and reader_first_rt_ns last
ROW = struct.Struct("<" + "q" * (1 + len(NAMES)))
"""A deviating port's PortTally as int64s: its port, then its Counts."""


@dataclass(frozen=True)
class Verdict:
    """One op's result as it crosses: the header's counts and mode, and the blob."""

    mode: str
    deviations: int
    arrivals: int
    blob: bytes


def to_wire(result: OpResult, mono_to_rt_ns: int, injected_ns: int = 0) -> Verdict:
    """The verdict of one OpResult. ``mono_to_rt_ns`` moves the monotonic first take onto
    CLOCK_REALTIME; ``injected_ns`` (test only, rawpacer.remote.clock.OFFSET_ENV) is added to every
    realtime figure, as a skewed clock would."""
    first = result.reader_first_ns
    packed = VERDICT.pack(
        *result.counts,
        *(getattr(result, name) for name in SCALARS),
        first + mono_to_rt_ns + injected_ns if first else 0,
    )
    pieces = [packed, *(ROW.pack(*t.as_row()) for t in result.deviations.values())]
    got = result.arrivals
    count = 0 if got is None else len(got)
    if got is not None and count:
        rx = got.rx_ns.astype(np.int64) + np.int64(injected_ns)
        pieces += [rx.astype("<i8").tobytes(), got.slot.astype("<i4").tobytes(), got.match.astype(np.bool_).tobytes()]
    return Verdict(result.mode, len(result.deviations), count, b"".join(pieces))


def from_wire(verdict: Verdict, *, sent: int, wait_s: float, op_s: float, timestamps: bool) -> tuple[OpResult, int]:
    """The OpResult the agent's verdict describes, and its first take on the agent's realtime clock."""
    view = memoryview(verdict.blob)
    *values, first_rt = VERDICT.unpack_from(view)
    counts, values = Counts(*values[: len(NAMES)]), values[len(NAMES) :]
    at = VERDICT.size
    rows = [ROW.unpack_from(view, at + i * ROW.size) for i in range(verdict.deviations)]
    at += verdict.deviations * ROW.size
    got = None
    count = verdict.arrivals
    if count:
        got = Arrivals(
            np.frombuffer(view, "<i8", count, at).astype(np.int64),
            np.frombuffer(view, "<i4", count, at + 8 * count).astype(np.int32),
            np.frombuffer(view, np.bool_, count, at + 12 * count).copy(),
        )
    elif timestamps:
        got = Arrivals(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.bool_))
    result = OpResult(
        mode=verdict.mode,
        sent=sent,
        wait_s=wait_s,
        op_s=op_s,
        counts=counts,
        deviations={row[0]: PortTally.from_row(row) for row in rows},
        arrivals=got,
        **dict(zip(SCALARS, values, strict=True)),
    )
    return result, first_rt
