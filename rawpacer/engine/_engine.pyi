"""Types of the rawpacer.engine._engine C extension (rawpacer/engine/_engine.c documents what each does)."""

from collections.abc import Sequence
from typing import overload

from _typeshed import ReadableBuffer, WriteableBuffer

from rawpacer._pace import Core

class Pool:
    frames: int
    @overload
    def __init__(
        self,
        data: ReadableBuffer,
        offsets: Sequence[int],
        lengths: Sequence[int],
        addresses: ReadableBuffer | None = None,
        /,
    ) -> None: ...
    @overload
    def __init__(
        self,
        data: Sequence[ReadableBuffer],
        offsets: None,
        lengths: None,
        addresses: ReadableBuffer | None = None,
        /,
    ) -> None: ...
    def release(self) -> None: ...

class Ring:
    def __init__(
        self,
        memory: WriteableBuffer,
        producer_at: int,
        consumer_at: int,
        flags_at: int,
        entries_at: int,
        size: int,
        width: int,
        /,
    ) -> None: ...
    def reserve(self, n: int, /) -> tuple[int, int]: ...
    def submit(self, n: int, /) -> None: ...
    def peek(self, n: int, /) -> tuple[int, int]: ...
    def release(self, n: int, /) -> None: ...
    def sync(self, producer: bool, /) -> None: ...
    def entry(self, index: int, /) -> tuple[int, int, int]: ...
    def set_entry(self, index: int, addr: int, length: int = 0, options: int = 0, /) -> None: ...

class Engine:
    kicks: int
    dropped: int
    completed: int
    stray: int
    sent: int
    in_flight: int
    def send(
        self,
        pool: Pool,
        first: int,
        count: int,
        batch: int,
        core: Core | None = None,
        sequence: tuple[int, int] | None = None,
        stamps: Sequence[tuple[int, int, int, bool, int, int, int, int, int, int]] | None = None,
        /,
    ) -> int: ...
    def reap(self) -> int: ...
    def close(self) -> None: ...

def mmsg(fd: int, /) -> Engine: ...
def tpacket(fd: int, ring: WriteableBuffer, frame_size: int, frame_nr: int, /) -> Engine: ...
def xdp(
    fd: int, umem: WriteableBuffer, chunk_size: int, tx: Ring, completion: Ring, need_wakeup: bool, max_descs: int, /
) -> Engine: ...
