"""Types of the rawpacer._pace C extension (rawpacer/_pace.c documents what each does)."""

from collections.abc import Sequence

import numpy as np
from _typeshed import ReadableBuffer
from numpy.typing import NDArray

def wait_until(deadline_ns: int, spin_ns: int, /) -> tuple[int, int]: ...
def send_paced(
    fd: int,
    frames: Sequence[ReadableBuffer],
    addresses: Sequence[ReadableBuffer] | None,
    offsets: NDArray[np.int64],
    late: NDArray[np.int64],
    state: NDArray[np.int64],
    first: int,
    count: int,
    /,
) -> tuple[int, int]: ...
