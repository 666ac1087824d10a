"""Types of the rawpacer.traffic._lane C extension (rawpacer/traffic/_lane.c documents what each does)."""

from collections.abc import Callable
from typing import Any, TypeAlias

from _typeshed import ReadableBuffer, WriteableBuffer
from numpy.typing import NDArray

Readable: TypeAlias = ReadableBuffer | NDArray[Any]
Writable: TypeAlias = WriteableBuffer | NDArray[Any]

def pcap_records(
    data: Readable,
    at: int,
    big: bool,
    nanos: bool,
    offsets: Writable,
    caplens: Writable,
    origlens: Writable,
    times: Writable,
    /,
) -> tuple[int, int, int]: ...

class Lane:
    flows: int
    def __init__(
        self,
        reader_mac: bytes,
        writer_mac: bytes,
        v4: bytes | None,
        v6: bytes | None,
        vlan: int,
        mtu: int,
        flow_of: Callable[[bytes, int], tuple[int, int]],
        /,
    ) -> None: ...
    def run(
        self,
        data: Readable,
        offsets: Readable,
        caplens: Readable,
        links: Readable,
        first: int,
        stop: int,
        out: Writable,
        out_at: int,
        frame_at: int,
        out_offsets: Writable,
        out_lengths: Writable,
        flows: Writable,
        hashes: Writable,
        sequences: Writable,
        /,
    ) -> tuple[int, int, int]: ...
