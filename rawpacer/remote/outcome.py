"""An op's ``OpResult`` across the wire: counts and deviating ports as JSON, arrivals as one blob.

The agent sends what its ``ReaderSet`` returned; the controller rebuilds the ``OpResult`` with its
own ``sent``, wait and op times (those are timed where the op is driven). ``reader_first_rt_ns``
is the first take moved onto the agent's CLOCK_REALTIME, the clock the offset is measured on.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np

from rawpacer.readers import Arrivals, Counts, OpResult, PortTally
from rawpacer.readers.counts import NAMES

_LOCAL = ("sent", "wait_s", "op_s", "deviations", "arrivals")
"""OpResult fields the controller fills itself."""


def to_wire(result: OpResult, mono_to_rt_ns: int, injected_ns: int = 0) -> tuple[dict[str, Any], bytes]:
    """(outcome fields, arrivals blob) for one OpResult; the blob is rx_ns, slot, match arrays in a row.
    ``mono_to_rt_ns`` moves the monotonic first take onto CLOCK_REALTIME; ``injected_ns`` (test only,
    rawpacer.remote.clock.OFFSET_ENV) is added to every realtime figure, as a skewed clock would."""
    out = {f.name: getattr(result, f.name) for f in fields(result) if f.name not in _LOCAL}
    out.update(out.pop("counts").to_dict())  # flat, as the wire has always carried them
    out["deviations"] = [t.as_row() for t in result.deviations.values()]
    first = result.reader_first_ns
    out["reader_first_rt_ns"] = first + mono_to_rt_ns + injected_ns if first else 0
    got = result.arrivals
    if got is None or not len(got):
        return out, b""
    rx = got.rx_ns.astype(np.int64) + np.int64(injected_ns)
    return out, rx.tobytes() + got.slot.astype(np.int32).tobytes() + got.match.astype(np.bool_).tobytes()


def from_wire(
    outcome: dict[str, Any], blob: bytes, count: int, *, sent: int, wait_s: float, op_s: float, timestamps: bool
) -> tuple[OpResult, int]:
    """The OpResult the agent's outcome describes, and its first take on the agent's realtime clock."""
    fields_in = dict(outcome)
    first_rt = int(fields_in.pop("reader_first_rt_ns"))
    rows = fields_in.pop("deviations")
    counts = Counts.of(fields_in)
    for name in NAMES:
        fields_in.pop(name, None)
    got = None
    if count:
        view = memoryview(blob)
        got = Arrivals(
            np.frombuffer(view, np.int64, count, 0).copy(),
            np.frombuffer(view, np.int32, count, 8 * count).copy(),
            np.frombuffer(view, np.bool_, count, 12 * count).copy(),
        )
    elif timestamps:
        got = Arrivals(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.bool_))
    result = OpResult(
        **fields_in,
        sent=sent,
        wait_s=wait_s,
        op_s=op_s,
        counts=counts,
        deviations={row[0]: PortTally.from_row(row) for row in rows},
        arrivals=got,
    )
    return result, first_rt
