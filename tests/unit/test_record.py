"""The replay recorder's C loop (``rawpacer.readers._record``) on sockets of this process, no
namespace: AF_UNIX datagram pairs (no kernel stamp: the CLOCK_REALTIME fallback) and a UDP socket
on 127.0.0.1 with SO_TIMESTAMPNS (the kernel's stamp); what it records against the hash's Python
twin, its two ways back to Python (a command, a settled collection), the memfd layout, growth
past its first room, and its refusals. ``tests/system/test_replay_recorder.py`` holds it to the
Python twin on real traffic."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest

from rawpacer.kernel.timestamping import SO_TIMESTAMPNS
from rawpacer.readers import _record  # built by sudo-run.sh: test_the_c_recorder_is_the_one_in_use says if not
from rawpacer.readers.recorder import BYTES_PER_DATAGRAM, resolve_recorder
from rawpacer.readers.replaymatch import python_datagram_hash

SETTLE_NS = 20_000_000
FAR_NS = 10**12


@pytest.fixture
def control() -> Iterator[tuple[socket.socket, socket.socket]]:
    """The control pair: the recorder watches the first end, the test writes commands to the second."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        yield ours, theirs


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    """Three AF_UNIX datagram pairs: slot i reads the first end of pair i."""
    made = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(3)]
    yield made
    for a, b in made:
        a.close()
        b.close()


def records(recorder: _record.Recorder) -> tuple[np.ndarray, ...]:
    """dump() into a memfd, read back as (rx_ns, hash, slot, length) by the layout the parent maps."""
    fd = os.memfd_create("test-record")
    try:
        count = recorder.dump(fd)
        assert os.fstat(fd).st_size == count * BYTES_PER_DATAGRAM
        raw = os.pread(fd, count * BYTES_PER_DATAGRAM, 0)
    finally:
        os.close(fd)
    offsets = [0, 8 * count, 16 * count, 20 * count]
    types = [np.int64, np.uint64, np.int32, np.int32]
    return tuple(np.frombuffer(raw, t, count, at) for t, at in zip(types, offsets, strict=True))


def collect(recorder: _record.Recorder, settle_ns: int = SETTLE_NS) -> int:
    """One collection as the recording process runs it: settle from now, deadline far."""
    now = time.monotonic_ns()
    return recorder.run(settle_ns, now, now + FAR_NS)


def test_every_datagram_is_recorded_with_its_slot_length_hash_and_a_fallback_stamp(control, pairs):
    sent = [(0, b""), (1, b"x"), (2, bytes(range(256)) * 35), (0, b"\xff" * 9000), (2, b"last one")]
    recorder = _record.Recorder([a.fileno() for a, _ in pairs], control[0].fileno())
    before = time.time_ns()
    for slot, data in sent:
        pairs[slot][1].send(data)
    assert collect(recorder) == _record.SETTLED and recorder.count == len(sent)
    after = time.time_ns()
    rx, digest, slot, length = records(recorder)
    by_slot = sorted(zip(slot.tolist(), length.tolist(), digest.tolist(), strict=True))
    want = sorted((s, len(d), python_datagram_hash(d)) for s, d in sent)
    assert by_slot == want
    assert ((rx >= before) & (rx <= after)).all()  # AF_UNIX carries no stamp: CLOCK_REALTIME when read
    assert recorder.count == 0 and records(recorder)[0].size == 0  # dump() started afresh


def test_a_udp_socket_gives_the_kernel_stamp_in_arrival_order(control):
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as reader,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        reader.bind(("127.0.0.1", 0))
        reader.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # The kernel turns receive stamping on for the first socket that asks from a deferred work item
        # (net_enable_timestamp); until it has run, a datagram is stamped when read. Wait for it here.
        time.sleep(0.05)
        recorder = _record.Recorder([reader], control[0].fileno())
        payloads = [i.to_bytes(4, "big") * i for i in range(50)]
        before = time.time_ns()
        for data in payloads:
            tx.sendto(data, reader.getsockname())
        sent_by = time.time_ns()
        time.sleep(0.05)  # read well after sending: a stamp taken when read would be later than sent_by
        assert collect(recorder) == _record.SETTLED
    rx, digest, slot, length = records(recorder)
    assert digest.tolist() == [python_datagram_hash(d) for d in payloads] and set(slot.tolist()) == {0}
    assert length.tolist() == [len(d) for d in payloads]
    assert ((rx >= before) & (rx <= sent_by)).all() and (np.diff(rx) >= 0).all()


def test_a_command_returns_at_once_and_leaves_itself_to_be_read(control, pairs):
    ours, theirs = control
    recorder = _record.Recorder([a.fileno() for a, _ in pairs], ours.fileno())
    pairs[1][1].send(b"before the command")
    theirs.send(b"collect")
    assert recorder.run(0, 0, 0) == _record.COMMAND  # settle 0: no collection open, only a command ends it
    assert ours.recv(64) == b"collect"
    assert collect(recorder) == _record.SETTLED and recorder.count == 1


def test_the_deadline_ends_a_collection_that_never_settles(control, pairs):
    recorder = _record.Recorder([a.fileno() for a, _ in pairs], control[0].fileno())
    now = time.monotonic_ns()
    assert recorder.run(FAR_NS, now, now + 30_000_000) == _record.SETTLED
    assert time.monotonic_ns() - now >= 30_000_000 and recorder.count == 0


def test_the_records_grow_past_their_first_room(control, pairs):
    """More datagrams than the first room (65,536), in rounds a datagram pair's queue holds."""
    recorder = _record.Recorder([a.fileno() for a, _ in pairs], control[0].fileno())
    total = 0
    for round_ in range(700):
        for i in range(100):
            pairs[i % 3][1].send((round_ * 100 + i).to_bytes(4, "little"))
        total += 100
        assert collect(recorder, 1_000_000) == _record.SETTLED
    assert recorder.count == total == 70_000
    _, digest, slot, length = records(recorder)
    assert sorted(digest.tolist()) == sorted(python_datagram_hash(n.to_bytes(4, "little")) for n in range(total))
    assert np.bincount(slot).tolist() == [23_800, 23_100, 23_100] and set(length.tolist()) == {4}


def test_refusals(control, pairs):
    with pytest.raises(ValueError, match="0 sockets is out of range"):
        _record.Recorder([], control[0].fileno())
    with pytest.raises(TypeError):
        _record.Recorder(["not a socket"], control[0].fileno())
    with pytest.raises(OSError):
        _record.Recorder([pairs[0][0].fileno()], 10_000)  # no such descriptor: epoll_ctl says EBADF
    recorder = _record.Recorder([pairs[0][0].fileno()], control[0].fileno())
    pairs[0][1].send(b"kept")
    collect(recorder)
    read_end, write_end = os.pipe()
    os.close(write_end)
    with pytest.raises(OSError):
        recorder.dump(read_end)  # a pipe's read end cannot be written: the records stay
    os.close(read_end)
    assert recorder.count == 1


def test_the_c_recorder_is_the_one_in_use_and_the_twin_is_chosen_without_it():
    assert resolve_recorder("auto") == "c" and resolve_recorder("python") == "python"
    code = (
        "import sys; sys.modules['rawpacer.readers._record'] = None\n"
        "from rawpacer.errors import UsageError\n"
        "from rawpacer.readers.recorder import resolve_recorder\n"
        "try:\n    resolve_recorder('c')\nexcept UsageError as exc:\n    print(exc)\n"
        "print(resolve_recorder('auto'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines() == [
        "recorder 'c' is not allowed: rawpacer.readers._record is not built; use auto or python",
        "python",
    ]
    with pytest.raises(Exception, match="recorder 'fast' is not allowed; use one of: auto, c, python"):
        resolve_recorder("fast")
