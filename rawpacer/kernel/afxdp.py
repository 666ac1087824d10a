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

Driving the rings (reserving TX descriptors, kicking, reaping completions) is the transmit
engine's job (``rawpacer.engine``, its ring in libxdp's shape with acquire/release ordering, so
no CPU-specific rule): this module sets the socket up, maps its rings and reads its statistics.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import mmap
import os
import socket
import struct
import time
from dataclasses import dataclass

import numpy as np

from rawpacer.errors import PrivilegeError, SandboxError, Unavailable, UsageError, require

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
"""The engine's longest wait for the kernel to take a descriptor or complete one (STALL_MS in _engine.c)."""
RELEASE_S = 0.5
"""How long bind() keeps retrying a queue that is busy, in case its last socket is still being released."""
RELEASE_POLL_S = 0.005

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
OPTIONS = struct.Struct("=I")
DESC = np.dtype([("addr", "<u8"), ("len", "<u4"), ("options", "<u4")])
"""struct xdp_desc (16 bytes)."""


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


def _unmap(area: mmap.mmap) -> None:
    """Unmap now, or, while a caller still holds a numpy view of it, when the last view goes."""
    with contextlib.suppress(BufferError):
        area.close()


class _Ring:
    """One mapped ring (the engine's ``Ring`` drives it): the mapping and where its words sit."""

    def __init__(self, sock: socket.socket, offsets: tuple[int, ...], entries: int, width: int, pgoff: int):
        producer, consumer, desc, flags = offsets
        self.map = mmap.mmap(
            sock.fileno(),
            desc + entries * width,
            mmap.MAP_SHARED | mmap.MAP_POPULATE,
            mmap.PROT_READ | mmap.PROT_WRITE,
            offset=pgoff,
        )
        self.offsets = (producer, consumer, flags, desc)
        """Where its producer, consumer and flags words and its entries sit in ``map``."""
        self.size = entries

    def close(self) -> None:
        """Unmap (once the engine's view of it is gone, if it still holds one). Safe to call twice."""
        if not self.map.closed:
            _unmap(self.map)


class XdpSocket:
    """A TX-only AF_XDP socket bound to one queue of one interface, with its UMEM and rings.

    The transmit engine (``rawpacer.engine.xdp``) drives it: the UMEM (``umem``, ``frames`` as
    numpy) and the mapped TX and completion rings (``tx``, ``cq``: each
    ring's mapping and where its words sit). ``statistics`` reads XDP_STATISTICS when asked.
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
            self.tx = _Ring(self.sock, offsets[4:8], tx_ring, DESC.itemsize, XDP_PGOFF_TX_RING)
            stack.callback(self.tx.close)
            self.cq = _Ring(self.sock, offsets[12:16], completion_ring, 8, XDP_UMEM_PGOFF_COMPLETION_RING)
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

    # --- reporting and life cycle ---------------------------------------------------------

    def tx_descriptors(self, count: int) -> np.ndarray:
        """The TX ring's first ``count`` descriptors (addr, len, options), copied: what the engine
        published there last, as the kernel read it (a notebook's or a test's look inside)."""
        return np.frombuffer(self.tx.map, DESC, min(count, self.tx.size), self.tx.offsets[3]).copy()

    def statistics(self) -> dict[str, int]:
        """The socket's XDP_STATISTICS counters by name (struct xdp_statistics)."""
        raw = self.sock.getsockopt(SOL_XDP, XDP_STATISTICS, STATISTICS.size)
        return dict(zip(STATISTICS_FIELDS, STATISTICS.unpack(raw)))

    def close(self) -> None:
        """Close the socket (the kernel unbinds it and unpins the UMEM), then unmap the rings and the
        UMEM (when the last view of ``frames`` a caller holds goes, if one does). Safe to call twice."""
        self._stack.close()
