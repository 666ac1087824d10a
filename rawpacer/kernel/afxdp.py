"""An AF_XDP socket that transmits: its UMEM, fill, completion and TX rings (``linux/if_xdp.h``).

How the pieces fit (kernel Documentation/networking/af_xdp.rst, net/xdp/xsk.c):

- The **UMEM** is one page-aligned area of our own memory (an anonymous mmap), registered with
  ``XDP_UMEM_REG`` and cut into equal chunks (a power of two, 2048 bytes up to a page). A frame is
  written into chunks; a descriptor (``struct xdp_desc``: addr, len, options) names it by its byte
  offset in the UMEM. One descriptor stays inside one chunk, so a frame longer than a chunk is a
  multi-buffer packet: consecutive descriptors, ``XDP_PKT_CONTD`` on all but the last, allowed
  only on a socket bound with ``XDP_USE_SG`` (Linux 6.6+).
- Four single-producer, single-consumer rings are shared with the kernel, each a power-of-two array
  plus a producer index, a consumer index and a flags word (``XDP_MMAP_OFFSETS`` says where):
  **TX** (we produce descriptors, the kernel consumes them), **completion** (the kernel produces
  the UMEM address of every descriptor it is done with, we consume), and the receive pair, **fill**
  and RX. bind() insists on a fill ring, so a one-entry one is registered; it is never mapped and
  there is no RX ring: this socket only sends, and needs no XDP program, which is only ever
  involved in steering received frames to a socket.
- A ``sendto(fd, NULL, 0, MSG_DONTWAIT)`` (the *kick*) makes the kernel look at the TX ring. In
  copy mode it transmits right there: for each descriptor it allocates an skb, copies the chunk in
  and calls the driver (``__dev_direct_xmit``, no qdisc), at most ``XDP_MAX_TX_SKB_BUDGET``
  descriptors per call (32 unless raised, 6.17+), returning EAGAIN when work is left. The skb's
  destructor writes the descriptor's address to the completion ring; until then the chunk is the
  kernel's. In zero-copy mode the kick only wakes the driver, which reads the chunks by DMA.

Memory ordering. The kernel loads a ring's producer index with acquire semantics and reads the
entries after it, so the entries must be visible before the producer index (a release store). From
Python every store is its own C call (numpy copies the descriptors, then a memoryview stores the
u32 index), which no compiler can reorder across, and x86-64 is TSO: stores become visible in
program order, a load is never reordered with an older load, and a store never passes an older
load. So "descriptors, then producer" is a release store as written, and on the completion ring
"load the producer, then the addresses, then store our consumer" is an acquire load followed by a
release, exactly what the kernel's ``smp_load_acquire`` / ``smp_store_release`` pair expects. An
aligned u32 load or store is a single access. Weakly ordered CPUs (arm64, ...) would need real
barrier instructions, which Python cannot issue: this module refuses to run there.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import mmap
import os
import platform
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rawpacer.errors import DeliveryError, PrivilegeError, SandboxError, Unavailable, UsageError, require

AF_XDP = 44
SOL_XDP = 283

# sxdp_flags of struct sockaddr_xdp
XDP_SHARED_UMEM = 1 << 0
XDP_COPY = 1 << 1
XDP_ZEROCOPY = 1 << 2
XDP_USE_NEED_WAKEUP = 1 << 3
XDP_USE_SG = 1 << 4

# socket options (SOL_XDP)
XDP_MMAP_OFFSETS = 1
XDP_RX_RING = 2
XDP_TX_RING = 3
XDP_UMEM_REG = 4
XDP_UMEM_FILL_RING = 5
XDP_UMEM_COMPLETION_RING = 6
XDP_STATISTICS = 7
XDP_OPTIONS = 8
XDP_MAX_TX_SKB_BUDGET = 9

XDP_OPTIONS_ZEROCOPY = 1 << 0
XDP_RING_NEED_WAKEUP = 1 << 0
XDP_PKT_CONTD = 1 << 0

XDP_PGOFF_TX_RING = 0x80000000
XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000

PAGE = mmap.PAGESIZE
MIN_CHUNK = 2048
"""XDP_UMEM_MIN_CHUNK_SIZE: chunks are a power of two from here up to a page."""
TX_BATCH_SIZE = 32
"""Descriptors one copy-mode kick transmits unless XDP_MAX_TX_SKB_BUDGET raises it (net/xdp/xsk.c)."""
COPY_MAX_DESCS = 18
"""Descriptors one copy-mode packet may span: the first becomes the skb's linear part, each further
one a page fragment, and an skb has MAX_SKB_FRAGS (17 unless the kernel is configured for more)."""
FILL_RING = 1
"""Entries of the fill ring bind() requires; nothing is received, so it is never used."""
STALL_S = 1.0
"""Longest wait for the kernel to take a descriptor or complete one before giving up, loudly."""
POLL_MS = 1
RECLAIM_S = 0.1
"""After invalid descriptors: how long nothing must complete before the rest in flight count as theirs."""
RELEASE_S = 0.5
"""How long bind() keeps retrying a queue that is busy, in case its last socket is still being released."""
RELEASE_POLL_S = 0.005
_MASK32 = 0xFFFFFFFF

SOCKADDR_XDP = struct.Struct("=HHIII")
"""struct sockaddr_xdp: family, flags, ifindex, queue_id, shared_umem_fd."""
UMEM_REG = struct.Struct("=QQIIII")
"""struct xdp_umem_reg: addr, len, chunk_size, headroom, flags, tx_metadata_len."""
MMAP_OFFSETS = struct.Struct("=16Q")
"""struct xdp_mmap_offsets: rx, tx, fill, completion; each producer, consumer, desc, flags."""
STATISTICS_FIELDS = (
    "rx_dropped",
    "rx_invalid_descs",
    "tx_invalid_descs",
    "rx_ring_full",
    "rx_fill_ring_empty_descs",
    "tx_ring_empty_descs",
)
"""struct xdp_statistics, in order."""
STATISTICS = struct.Struct(f"={len(STATISTICS_FIELDS)}Q")
STATISTICS_V1_SIZE = 24
"""struct xdp_statistics_v1: the first three counters, enough for tx_invalid_descs and a smaller copy."""
_TX_INVALID = struct.Struct("=Q")
_TX_INVALID_AT = 16
OPTIONS = struct.Struct("=I")
DESC = np.dtype([("addr", "<u8"), ("len", "<u4"), ("options", "<u4")])
"""struct xdp_desc (16 bytes)."""

FREE, CLAIMED, IN_FLIGHT = 0, 1, 2
"""A chunk is ours to write (FREE), being written (CLAIMED), or the kernel's until it completes."""

MODES = ("auto", "copy", "zerocopy")
_MODE_FLAGS = {"auto": 0, "copy": XDP_COPY, "zerocopy": XDP_ZEROCOPY}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]


def _errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def _bind(fd: int, flags: int, ifindex: int, queue: int) -> int:
    """bind(2) with a sockaddr_xdp (Python's socket module has no AF_XDP addresses); 0 or the errno."""
    address = ctypes.create_string_buffer(SOCKADDR_XDP.pack(AF_XDP, flags, ifindex, queue, 0), SOCKADDR_XDP.size)
    if _libc.bind(fd, address, SOCKADDR_XDP.size) == 0:
        return 0
    return ctypes.get_errno()


def _open_socket() -> socket.socket:
    """A fresh AF_XDP socket; Unavailable / PrivilegeError naming the kernel's reason."""
    try:
        return socket.socket(AF_XDP, socket.SOCK_RAW, 0)
    except OSError as exc:
        if exc.errno == errno.EAFNOSUPPORT:
            raise Unavailable(
                "xdp unavailable: this kernel has no AF_XDP sockets (socket(AF_XDP): EAFNOSUPPORT; "
                "it needs CONFIG_XDP_SOCKETS=y)"
            ) from None
        if exc.errno == errno.EPERM:
            raise PrivilegeError("xdp needs CAP_NET_RAW to open an AF_XDP socket (socket(AF_XDP): EPERM)") from None
        raise Unavailable(f"xdp unavailable: socket(AF_XDP) failed: {exc.strerror}") from None


@dataclass(frozen=True)
class Features:
    """What this kernel's AF_XDP offers, probed without binding to any interface."""

    sockets: bool
    reason: str
    multi_buffer: bool = False
    tx_budget: bool = False


@functools.cache
def features() -> Features:
    """Probe once: can an AF_XDP socket be opened here, does bind() know XDP_USE_SG, does
    setsockopt() know XDP_MAX_TX_SKB_BUDGET?

    Nothing is bound and nothing is sent: bind() checks its flags before it looks up the device, so
    XDP_USE_SG with ifindex 0 fails with ENODEV where the flag is known and EINVAL where it is not;
    XDP_MAX_TX_SKB_BUDGET on a socket without a TX ring fails with EACCES where the option exists
    and ENOPROTOOPT where it does not.
    """
    machine = platform.machine()
    if machine not in ("x86_64", "AMD64"):
        return Features(
            False,
            f"rawpacer's AF_XDP rings rely on x86-64's store ordering (no barrier instructions from "
            f"Python); this machine is {machine}",
        )
    try:
        sock = _open_socket()
    except (Unavailable, PrivilegeError) as exc:
        return Features(False, str(exc))
    with sock:
        multi_buffer = _bind(sock.fileno(), XDP_USE_SG, 0, 0) == errno.ENODEV
        try:
            sock.setsockopt(SOL_XDP, XDP_MAX_TX_SKB_BUDGET, struct.pack("=I", TX_BATCH_SIZE))
            budget = True
        except OSError as exc:
            budget = exc.errno == errno.EACCES
    return Features(True, "AF_XDP sockets open", multi_buffer, budget)


def xdp_support() -> tuple[bool, str]:
    """``(usable, one line)``: whether the xdp writer can run here and what this kernel offers it."""
    found = features()
    if not found.sockets:
        return False, f"unavailable: {found.reason}"
    yes = {True: "yes", False: "no"}
    return True, (
        f"AF_XDP sockets: yes; multi-buffer (XDP_USE_SG, Linux 6.6+): {yes[found.multi_buffer]}; "
        f"XDP_MAX_TX_SKB_BUDGET (Linux 6.17+): {yes[found.tx_budget]}"
    )


def chunks_for(length: int, chunk_size: int) -> int:
    """Chunks (descriptors) a ``length``-byte frame takes."""
    return max(1, -(-length // chunk_size))


def frame_descriptors(first_chunk: int, frames: int, frame_len: int, chunk_size: int) -> np.ndarray:
    """Descriptors for ``frames`` frames of ``frame_len`` bytes, each written across its own run of
    consecutive chunks from ``first_chunk`` on: XDP_PKT_CONTD on every descriptor but a frame's last."""
    per_frame = chunks_for(frame_len, chunk_size)
    descs = np.empty(frames * per_frame, DESC)
    descs["addr"] = (first_chunk + np.arange(frames * per_frame, dtype=np.uint64)) * chunk_size
    tail = frame_len - (per_frame - 1) * chunk_size
    descs["len"] = np.tile([chunk_size] * (per_frame - 1) + [tail], frames)
    descs["options"] = np.tile([XDP_PKT_CONTD] * (per_frame - 1) + [0], frames)
    return descs


def check_ring(name: str, entries: int) -> int:
    """A ring size: a positive power of two; UsageError naming it otherwise."""
    require(
        isinstance(entries, int) and not isinstance(entries, bool) and entries > 0 and entries & (entries - 1) == 0,
        f"{name} {entries!r} is not allowed; use a power of two (1, 2, 4, ... entries)",
    )
    return entries


def check_chunk_size(chunk_size: int) -> int:
    """A UMEM chunk size: a power of two from 2048 to the page size; UsageError otherwise."""
    allowed = [size for size in (2048, 4096, 8192, 16384, 32768, 65536) if size <= PAGE]
    require(chunk_size in allowed, f"chunk_size {chunk_size!r} is not allowed; use one of {allowed}")
    return chunk_size


def next_power_of_two(value: int) -> int:
    """The smallest power of two at least ``value`` (1 for 0 or 1)."""
    return 1 << max(0, value - 1).bit_length()


def _whole_packets(descs: np.ndarray, *, first: bool = False) -> int:
    """How many of ``descs`` end a packet boundary: all up to the last descriptor without
    XDP_PKT_CONTD (``first``: up to the first one)."""
    ends = np.flatnonzero((descs["options"] & XDP_PKT_CONTD) == 0)
    if not len(ends):
        return 0
    return int(ends[0 if first else -1]) + 1


def _unmap(area: mmap.mmap) -> None:
    """Unmap now, or, while a caller still holds a numpy view of it, when the last view goes."""
    with contextlib.suppress(BufferError):
        area.close()


def _release(view: memoryview) -> None:
    """Release now, or, while a caller still holds a slice of it, when the last slice goes."""
    with contextlib.suppress(BufferError):
        view.release()


class _Ring:
    """One mapped ring: its producer, consumer and flags words and its entries, as numpy sees them."""

    def __init__(self, sock: socket.socket, offsets: tuple[int, ...], entries: int, dtype: np.dtype, pgoff: int):
        producer, consumer, desc, flags = offsets
        self.map = mmap.mmap(
            sock.fileno(),
            desc + entries * dtype.itemsize,
            mmap.MAP_SHARED | mmap.MAP_POPULATE,
            mmap.PROT_READ | mmap.PROT_WRITE,
            offset=pgoff,
        )
        view = memoryview(self.map)
        self.producer = view[producer : producer + 4].cast("I")
        self.consumer = view[consumer : consumer + 4].cast("I")
        self.flags = view[flags : flags + 4].cast("I")
        self.entries = np.frombuffer(self.map, dtype, count=entries, offset=desc)
        self.words = self.entries.view(np.uint64).reshape(entries, -1)
        """The entries as rows of u64 words (one for an address, two for a descriptor)."""
        self.size = entries
        self.mask = entries - 1

    def close(self) -> None:
        """Drop the views, then unmap. Safe to call twice."""
        if not self.map.closed:
            for view in (self.producer, self.consumer, self.flags):
                view.release()
            del self.entries, self.words
            _unmap(self.map)


class XdpSocket:
    """A TX-only AF_XDP socket bound to one queue of one interface, with its UMEM and rings.

    The caller claims chunks (``claim``), writes frames into them (``frames`` as numpy, ``view`` as a
    memoryview of the UMEM), and hands their descriptors
    over (``publish`` for a numpy batch, ``queue`` for one frame); ``flush`` kicks the kernel until
    the TX ring is empty and reaps completions. A chunk is written only once its last transmission
    has completed; waits never last longer than STALL_S without progress.
    """

    def __init__(
        self,
        ifname: str,
        ifindex: int,
        *,
        chunks: int,
        chunk_size: int = PAGE,
        tx_ring: int,
        completion_ring: int,
        queue: int = 0,
        mode: str = "auto",
        need_wakeup: bool = True,
        multi_buffer: bool = False,
        tx_budget: int = 0,
    ) -> None:
        found = features()
        if not found.sockets:
            raise Unavailable(f"xdp unavailable: {found.reason}")
        require(mode in MODES, f"xdp mode {mode!r} is not allowed; use one of: {', '.join(MODES)}")
        require(
            isinstance(chunks, int) and chunks >= 1,
            f"xdp chunks {chunks!r} is not allowed; use 1 or more",
        )
        self.ifname, self.queue_id = ifname, queue
        self.chunk_size = check_chunk_size(chunk_size)
        self.chunk_count = chunks
        self.shift = chunk_size.bit_length() - 1
        stack = contextlib.ExitStack()
        with stack:
            self.sock = stack.enter_context(_open_socket())
            self.umem = mmap.mmap(-1, chunks * chunk_size, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
            stack.callback(_unmap, self.umem)
            self.view = memoryview(self.umem)
            stack.callback(_release, self.view)
            self.frames = np.frombuffer(self.umem, np.uint8)
            """The UMEM as bytes; chunk i is ``frames[i * chunk_size : (i + 1) * chunk_size]``."""
            stack.callback(delattr, self, "frames")
            self._register_umem(chunks, chunk_size)
            self._setsockopt_ring(XDP_UMEM_FILL_RING, "fill ring", FILL_RING)
            self._setsockopt_ring(
                XDP_UMEM_COMPLETION_RING, "completion ring", check_ring("completion_ring", completion_ring)
            )
            self._setsockopt_ring(XDP_TX_RING, "tx ring", check_ring("tx_ring", tx_ring))
            offsets = MMAP_OFFSETS.unpack(self.sock.getsockopt(SOL_XDP, XDP_MMAP_OFFSETS, MMAP_OFFSETS.size))
            self.tx = _Ring(self.sock, offsets[4:8], tx_ring, DESC, XDP_PGOFF_TX_RING)
            stack.callback(self.tx.close)
            self.cq = _Ring(self.sock, offsets[12:16], completion_ring, np.dtype("<u8"), XDP_UMEM_PGOFF_COMPLETION_RING)
            stack.callback(self.cq.close)
            stack.callback(self.sock.close)  # first to go: the kernel unbinds before anything is unmapped
            self.multi_buffer = multi_buffer
            self.need_wakeup = need_wakeup
            flags = (
                _MODE_FLAGS[mode] | (XDP_USE_NEED_WAKEUP if need_wakeup else 0) | (XDP_USE_SG if multi_buffer else 0)
            )
            self._bind(flags, ifindex)
            self.tx_budget = self._set_budget(tx_budget, tx_ring)
            """Descriptors one kick may transmit in copy mode (XDP_MAX_TX_SKB_BUDGET)."""
            options = OPTIONS.unpack(self.sock.getsockopt(SOL_XDP, XDP_OPTIONS, OPTIONS.size))[0]
            self.mode = "zerocopy" if options & XDP_OPTIONS_ZEROCOPY else "copy"
            """How the kernel runs this socket: the driver's zero-copy, or the generic copy path."""
            self._stack = stack.pop_all()
        self.state = np.zeros(chunks, np.int8)
        """FREE, CLAIMED or IN_FLIGHT per chunk."""
        self._tx_head = 0
        self._cq_tail = 0
        self._pending: list[tuple[int, int, int]] = []
        self._poll = select.poll()
        self._poll.register(self.sock.fileno(), select.POLLOUT)
        self._send = self.sock.send
        self.published = self.completed = self.reclaimed = 0
        self.claimed = 0
        """Chunks claimed and not yet published."""
        self.kicks = 0
        """sendto() calls made: one per span when the budget covers it, one per 32 descriptors when not."""
        self.dropped = 0
        """Frames the driver dropped after the kernel took them (sendto EBUSY: completed, not sent)."""
        self._invalid_seen = 0

    # --- set-up ---------------------------------------------------------------------------

    def _register_umem(self, chunks: int, chunk_size: int) -> None:
        address = self.frames.ctypes.data
        reg = UMEM_REG.pack(address, chunks * chunk_size, chunk_size, 0, 0, 0)
        try:
            self.sock.setsockopt(SOL_XDP, XDP_UMEM_REG, reg)
        except OSError as exc:
            size = chunks * chunk_size
            if exc.errno in (errno.ENOMEM, errno.ENOBUFS, errno.EPERM):
                raise Unavailable(
                    f"xdp: the kernel could not pin a {size}-byte UMEM (XDP_UMEM_REG: {_errno_name(exc.errno or 0)}); "
                    "use fewer chunks or raise RLIMIT_MEMLOCK"
                ) from None
            raise UsageError(
                f"xdp: the kernel refused a UMEM of {chunks} chunks of {chunk_size} bytes "
                f"(XDP_UMEM_REG: {_errno_name(exc.errno or 0)})"
            ) from None

    def _setsockopt_ring(self, option: int, name: str, entries: int) -> None:
        try:
            self.sock.setsockopt(SOL_XDP, option, struct.pack("=I", entries))
        except OSError as exc:
            raise UsageError(
                f"xdp: the kernel refused a {name} of {entries} entries ({_errno_name(exc.errno or 0)})"
            ) from None

    def _bind(self, flags: int, ifindex: int) -> None:
        """bind(), retrying EBUSY for up to RELEASE_S: a socket closed moments ago frees its queue only
        after an RCU grace period and a workqueue pass (xsk_destruct, xp_put_pool)."""
        deadline = time.monotonic() + RELEASE_S
        code = _bind(self.sock.fileno(), flags, ifindex, self.queue_id)
        while code == errno.EBUSY and time.monotonic() < deadline:
            time.sleep(RELEASE_POLL_S)
            code = _bind(self.sock.fileno(), flags, ifindex, self.queue_id)
        where = f"queue {self.queue_id} of {self.ifname}"
        if code == 0:
            return
        if code == errno.EBUSY:
            raise Unavailable(
                f"xdp: {where} is taken: another AF_XDP socket is bound to it (bind: EBUSY); "
                "close that socket or pick another queue"
            )
        if code == errno.EOPNOTSUPP:
            raise Unavailable(
                f"xdp: {self.ifname}'s driver has no AF_XDP zero-copy (bind with XDP_ZEROCOPY: EOPNOTSUPP); "
                "use mode copy or auto"
            )
        if code == errno.ENODEV:
            raise SandboxError(f"xdp: interface {self.ifname!r} (ifindex {ifindex}) is not in this namespace")
        if code == errno.EINVAL:
            raise UsageError(
                f"xdp: bind to {where} refused (EINVAL): the queue must exist on the interface "
                f"(lo and veth have queue 0) and the flags {flags:#x} be known to this kernel"
            )
        raise Unavailable(f"xdp: bind to {where} failed ({_errno_name(code)}: {os.strerror(code)})")

    def _set_budget(self, budget: int, tx_ring: int) -> int:
        """Raise XDP_MAX_TX_SKB_BUDGET: ``budget`` descriptors per kick (0: the whole TX ring where
        the kernel has the option); the per-kick budget in force."""
        if budget == 0:
            if not features().tx_budget or tx_ring < TX_BATCH_SIZE:
                return TX_BATCH_SIZE
            budget = tx_ring
        if budget == TX_BATCH_SIZE:
            return budget
        try:
            self.sock.setsockopt(SOL_XDP, XDP_MAX_TX_SKB_BUDGET, struct.pack("=I", budget))
        except OSError as exc:
            if exc.errno == errno.ENOPROTOOPT:
                raise Unavailable(
                    "xdp: this kernel has no XDP_MAX_TX_SKB_BUDGET (Linux 6.17+); use tx_budget 0 or 32"
                ) from None
            raise UsageError(
                f"tx_budget {budget} is not allowed; use 0 (automatic) or {TX_BATCH_SIZE}-{tx_ring} (the TX ring size)"
            ) from None
        return budget

    # --- chunks ---------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Descriptors handed to the kernel and neither completed nor reclaimed as invalid."""
        return self.published - self.completed - self.reclaimed

    def claim(self, first: int, count: int, unit: int = 1) -> int:
        """Claim up to ``count`` consecutive chunks from chunk ``first`` for writing, in whole ``unit``s,
        at least one unit, waiting for the kernel to complete them; return how many were claimed."""
        state = self.state
        window = state[first : first + count]
        if window.any():
            if window[:unit].any():
                what = f"chunks {first}-{first + unit - 1} to complete"
                self._wait(lambda: not state[first : first + unit].any(), what)
            busy = window != FREE
            run = int(busy.argmax()) if busy.any() else len(window)
        else:  # the usual case: everything from there on is free
            run = len(window)
        run -= run % unit
        window[:run] = CLAIMED
        self.claimed += run
        return run

    # --- the TX ring ----------------------------------------------------------------------

    def queue(self, offset: int, length: int) -> None:
        """Hand over one frame written at UMEM byte ``offset`` (in claimed chunks) on the next submit."""
        size = self.chunk_size
        while length > size:
            self._pending.append((offset, size, XDP_PKT_CONTD))
            offset += size
            length -= size
        self._pending.append((offset, length, 0))

    def submit(self) -> None:
        """Publish the frames ``queue`` collected."""
        if self._pending:
            descs = np.array(self._pending, DESC)
            self._pending.clear()
            self.publish(descs)

    def publish(self, descs: np.ndarray, first_chunk: int | None = None) -> None:
        """Write descriptors into the TX ring and move its producer index (no kick): whole packets at
        a time, waiting for room when the ring is full. ``first_chunk``: the descriptors are chunks
        ``first_chunk``, ``first_chunk + 1``, ... in order (their state is then set as a slice)."""
        tx, total, done = self.tx, len(descs), 0
        while done < total:
            take = min(self._tx_room(), total - done)
            if take < total - done:
                take = _whole_packets(descs[done : done + take])
            if take == 0:
                self._wait_room(_whole_packets(descs[done:], first=True) or total - done)
                continue
            head = self._tx_head & tx.mask
            first = min(take, tx.size - head)
            chosen = descs[done : done + take]
            words = chosen.view(np.uint64).reshape(take, 2)  # plain copies: ~6x faster than structured ones
            tx.words[head : head + first] = words[:first]
            if take > first:  # wrapped past the ring's end
                tx.words[: take - first] = words[first:]
            if first_chunk is None:
                self.state[chosen["addr"] >> self.shift] = IN_FLIGHT
            else:
                self.state[first_chunk + done : first_chunk + done + take] = IN_FLIGHT
            self._tx_head = (self._tx_head + take) & _MASK32
            tx.producer[0] = self._tx_head  # after the descriptors: the release store (module doc)
            self.published += take
            self.claimed -= take
            done += take

    def _tx_room(self) -> int:
        return self.tx.size - ((self._tx_head - self.tx.consumer[0]) & _MASK32)

    def _wait_room(self, need: int) -> None:
        self._wait(lambda: self._tx_room() >= need, f"room for {need} descriptor(s) in the TX ring")

    def kick(self) -> None:
        """sendto(fd, NULL, 0, MSG_DONTWAIT): the kernel transmits (copy mode) or wakes the driver.

        Skipped when bound with XDP_USE_NEED_WAKEUP and the kernel has not asked for it (copy mode
        always asks). EAGAIN means work is left (budget spent, or the completion ring full); EBUSY
        that the driver dropped a frame the kernel had taken: it completes but is counted as not sent.
        """
        if self.need_wakeup and not self.tx.flags[0] & XDP_RING_NEED_WAKEUP:
            return
        self.kicks += 1
        try:
            self._send(b"", socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                self.dropped += 1
                return
            if exc.errno == errno.ENETDOWN:
                raise SandboxError(f"xdp: {self.ifname} is down: sendto() failed with ENETDOWN") from None
            raise DeliveryError(f"xdp: sendto() on {self.ifname} failed: {exc.strerror}") from None

    def reap(self) -> int:
        """Take the completions the kernel has produced: their chunks become free. Return how many."""
        cq = self.cq
        produced = cq.producer[0]  # then the addresses: the acquire load (module doc)
        count = (produced - self._cq_tail) & _MASK32
        if count:
            self.completed += count
            if self.in_flight or self.claimed:
                tail = self._cq_tail & cq.mask
                first = min(count, cq.size - tail)
                state, shift = self.state, self.shift
                state[cq.entries[tail : tail + first] >> shift] = FREE
                state[cq.entries[: count - first] >> shift] = FREE
            else:  # the usual case: nothing in flight or claimed is left, so every chunk is free
                self.state[:] = FREE
            self._cq_tail = produced
            cq.consumer[0] = produced  # after reading the addresses: the release store
        return count

    def flush(self) -> None:
        """Publish what is queued and kick until the kernel has taken every descriptor; reap.

        Then one look at XDP_STATISTICS: DeliveryError when the kernel counted invalid descriptors
        (their chunks reclaimed first, so the socket stays usable); DeliveryError as well when it
        makes no progress for STALL_S.
        """
        self.submit()
        tx = self.tx
        if tx.consumer[0] != self._tx_head:
            self.kick()  # the usual case: one kick takes them all
            self.reap()
            if tx.consumer[0] != self._tx_head:
                self._wait(lambda: tx.consumer[0] == self._tx_head, "the kernel to take the TX ring's descriptors")
                self.reap()
        self._check_invalid()

    def _progress(self) -> bool:
        """Kick if the TX ring holds work, reap completions; True when either moved."""
        before = self.tx.consumer[0]
        if before != self._tx_head:
            self.kick()
        return self.reap() > 0 or self.tx.consumer[0] != before

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        """Drive the kernel until ``done()``: publish what is queued, kick, reap; when nothing moves,
        look for invalid descriptors, then poll(); DeliveryError after STALL_S without progress."""
        deadline = None
        while not done():
            self.submit()
            if self._progress():
                deadline = None
                continue
            if self.tx.consumer[0] == self._tx_head and self.in_flight:
                self._check_invalid()
            if deadline is None:
                deadline = time.monotonic() + STALL_S
            elif time.monotonic() > deadline:
                raise DeliveryError(
                    f"xdp: waited {STALL_S} s for {what} on {self.ifname} with no progress "
                    f"({self.in_flight} descriptor(s) in flight, none completed)"
                )
            self._poll.poll(POLL_MS)

    def _check_invalid(self) -> None:
        """If the kernel counted invalid descriptors since the last look, reclaim and name them.

        The kernel skips an invalid descriptor (counted in tx_invalid_descs). Documentation says it
        never completes; Linux 6.18's copy path was measured to return its address on the completion
        ring all the same. Either way: wait until nothing completes for RECLAIM_S, then every chunk
        still in flight is one of them, free it, and raise DeliveryError.
        """
        raw = self.sock.getsockopt(SOL_XDP, XDP_STATISTICS, STATISTICS_V1_SIZE)
        invalid = _TX_INVALID.unpack_from(raw, _TX_INVALID_AT)[0] - self._invalid_seen
        if not invalid:
            return
        quiet_until = time.monotonic() + RECLAIM_S
        while self.in_flight > 0 and time.monotonic() < quiet_until:
            if self._progress():
                quiet_until = time.monotonic() + RECLAIM_S
            else:
                self._poll.poll(POLL_MS)
        self._invalid_seen += invalid
        self.reclaimed += self.in_flight
        self.claimed = 0
        self.state[:] = FREE
        self._pending.clear()
        rule = f", and a packet at most {COPY_MAX_DESCS} descriptors" if self.multi_buffer else ""
        raise DeliveryError(
            f"xdp: the kernel refused {invalid} TX descriptor(s) as invalid (XDP_STATISTICS tx_invalid_descs) "
            f"and sent nothing for them: a descriptor needs a length, must lie inside one {self.chunk_size}-byte "
            f"UMEM chunk and carry no option but XDP_PKT_CONTD{rule}"
        )

    # --- reporting and life cycle ---------------------------------------------------------

    def statistics(self) -> dict[str, int]:
        """The socket's XDP_STATISTICS counters by name (struct xdp_statistics)."""
        raw = self.sock.getsockopt(SOL_XDP, XDP_STATISTICS, STATISTICS.size)
        return dict(zip(STATISTICS_FIELDS, STATISTICS.unpack(raw)))

    def close(self) -> None:
        """Close the socket (the kernel unbinds it and unpins the UMEM), then unmap the rings and the
        UMEM (when the last view of ``frames`` a caller holds goes, if one does). Safe to call twice."""
        self._stack.close()
