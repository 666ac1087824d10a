"""Types of the C extension rawpacer.readers._record (rawpacer/readers/_record.c)."""

import socket
from collections.abc import Sequence

COMMAND: int
SETTLED: int
MAX_DATAGRAM: int

class Recorder:
    """A replay's recorder in C (the twin of replay._Recorder's Python loop): slot i is ``fds[i]``."""

    def __init__(self, fds: Sequence[socket.socket | int], ctl_fd: int) -> None: ...
    @property
    def count(self) -> int: ...
    def run(self, settle_ns: int, since_ns: int, deadline_ns: int, /) -> int: ...
    def dump(self, fd: int, /) -> int: ...
