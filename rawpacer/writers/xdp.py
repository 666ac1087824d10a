"""``xdp``: frames through an AF_XDP socket's UMEM and rings (the engine's AF_XDP back end), one descriptor batch and kick per span."""

from __future__ import annotations

import errno
from dataclasses import dataclass

from rawpacer import engine
from rawpacer.errors import DeliveryError, SandboxError, Unavailable, require
from rawpacer.kernel.afxdp import (
    COPY_MAX_DESCS,
    DESC,
    MODES,
    PAGE,
    STALL_S,
    TX_BATCH_SIZE,
    XdpSocket,
    check_chunk_size,
    check_ring,
    chunks_for,
    features,
    next_power_of_two,
)
from rawpacer.target import Target
from rawpacer.writers._ring import RingWriter
from rawpacer.writers.base import Knobs, WriterOptions, check_count, register

DEFAULT_CHUNKS = 512
"""UMEM chunks when the knob is 0 and one fan-out needs fewer."""
MAX_UMEM_BYTES = 64 << 20
"""Largest UMEM the writer pins (the same cap as packet-ring's TX ring)."""


@dataclass(frozen=True)
class XdpKnobs(Knobs):
    """The xdp writer's own settings.

    ``queue``: the interface queue to bind (lo and veth have queue 0). ``chunk_size``: bytes per UMEM
    chunk (2048 up to the page size). ``chunks``: UMEM chunks (0: one fan-out's descriptors, at
    least 512, at most 64 MiB of UMEM). ``tx_ring`` / ``completion_ring``: entries, powers of two (0:
    the chunk count rounded up to one). ``mode``: ``auto`` (zero-copy where the driver has it, else
    copy), ``copy`` or ``zerocopy``. ``need_wakeup``: bind with XDP_USE_NEED_WAKEUP and kick only
    when the kernel asks. ``multi_buffer``: frames longer than a chunk as multi-buffer packets
    (None: where the kernel has XDP_USE_SG; False: one chunk per frame, as on a kernel without it).
    ``tx_budget``: descriptors one kick may transmit (XDP_MAX_TX_SKB_BUDGET; 0: the whole TX ring
    where the kernel has the option; 32, the kernel's default, means re-kicking every 32).
    """

    queue: int = 0
    chunk_size: int = min(4096, PAGE)
    chunks: int = 0
    tx_ring: int = 0
    completion_ring: int = 0
    mode: str = "auto"
    need_wakeup: bool = True
    multi_buffer: bool | None = None
    tx_budget: int = 0

    def __post_init__(self) -> None:
        """Each knob checked where knobs are made, naming the value and what is allowed."""
        check_count("queue", self.queue)
        check_chunk_size(self.chunk_size)
        check_count("chunks", self.chunks)
        for name in ("tx_ring", "completion_ring"):
            if check_count(name, getattr(self, name)):
                check_ring(name, getattr(self, name))
        require(self.mode in MODES, f"xdp mode {self.mode!r} is not allowed; use one of: {', '.join(MODES)}")
        require(
            isinstance(self.need_wakeup, bool), f"need_wakeup {self.need_wakeup!r} is not allowed; use True or False"
        )
        require(
            self.multi_buffer in (None, True, False),
            f"multi_buffer {self.multi_buffer!r} is not allowed; use None (automatic), True or False",
        )
        budget = check_count("tx_budget", self.tx_budget)
        require(
            budget == 0 or budget >= TX_BATCH_SIZE,
            f"tx_budget {budget} is not allowed; use 0 (automatic) or {TX_BATCH_SIZE} and more",
        )


@register
class XdpWriter(RingWriter):
    """AF_XDP, TX only: a UMEM, its completion ring and a TX ring mapped from one socket, driven by
    the engine's AF_XDP back end (``rawpacer.engine``): each frame copied into UMEM chunks from its
    free list, one descriptor a chunk, a batch's descriptors published at once and one kick (or
    one per ``tx_budget``) to send them; a chunk is rewritten only after its completion.
    """

    name = "xdp"
    order = 13
    summary = "AF_XDP socket (TX only): frames copied into UMEM chunks, one descriptor batch and kick per fan-out"
    knobs_type = XdpKnobs
    knobs: XdpKnobs

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        knobs = self.knobs
        per_frame = chunks_for(self.max_frame, knobs.chunk_size)
        wanted = len(target.ports) * self.frames_per_message * per_frame
        chunks = knobs.chunks or min(max(DEFAULT_CHUNKS, wanted), MAX_UMEM_BYTES // knobs.chunk_size)
        require(
            per_frame <= chunks and chunks * knobs.chunk_size <= MAX_UMEM_BYTES,
            f"xdp chunks {chunks} is not allowed: a {self.max_frame}-byte frame takes {per_frame} chunks of "
            f"{knobs.chunk_size} bytes; use {per_frame} to {MAX_UMEM_BYTES // knobs.chunk_size}",
        )
        rings = {
            "tx_ring": knobs.tx_ring or next_power_of_two(chunks),
            "completion_ring": knobs.completion_ring or next_power_of_two(chunks),
        }
        for name, entries in rings.items():
            require(
                entries >= per_frame,
                f"xdp {name} {entries} is not allowed: one {self.max_frame}-byte frame takes {per_frame} "
                f"descriptors; use a power of two of at least {per_frame}",
            )
        with self.opening():
            self.xsk = XdpSocket(
                target.link.ifname,
                target.link.ifindex,
                chunks=chunks,
                chunk_size=knobs.chunk_size,
                queue=knobs.queue,
                mode=knobs.mode,
                need_wakeup=knobs.need_wakeup,
                multi_buffer=self.multi_buffer,
                tx_budget=knobs.tx_budget,
                **rings,
            )
            self.own(self.xsk.close)
            xsk = self.xsk
            self.tx_ring: engine.Ring | None = engine.Ring(xsk.tx.map, *xsk.tx.offsets, xsk.tx.size, DESC.itemsize)
            completion = engine.Ring(xsk.cq.map, *xsk.cq.offsets, xsk.cq.size, 8)
            self.engine = engine.xdp(
                xsk.sock.fileno(),
                xsk.umem,
                xsk.chunk_size,
                self.tx_ring,
                completion,
                xsk.need_wakeup,
                COPY_MAX_DESCS if self.multi_buffer else 1,
            )
            self.own(self._drop_rings)
            self.own(self.engine.close)
        self.mode = self.xsk.mode
        """``copy`` or ``zerocopy``: how the kernel ran this socket (lo and veth only have copy)."""
        self.tx_budget = self.xsk.tx_budget

    def frame_limit(self) -> tuple[int, str]:
        """One chunk, or COPY_MAX_DESCS chunks with multi-buffer (decided here, before the fit plan)."""
        wanted, size = self.knobs.multi_buffer, self.knobs.chunk_size
        have = features()
        if not have.sockets:
            raise Unavailable(f"xdp unavailable: {have.reason}")
        if wanted and not have.multi_buffer:
            raise Unavailable(
                "xdp: this kernel has no AF_XDP multi-buffer (bind flag XDP_USE_SG, Linux 6.6+); "
                "use multi_buffer None or False"
            )
        self.multi_buffer = have.multi_buffer if wanted is None else wanted
        """Frames longer than a chunk go out as multi-buffer packets (XDP_USE_SG, XDP_PKT_CONTD)."""
        if self.multi_buffer:
            return COPY_MAX_DESCS * size, f"xdp sends a frame in at most {COPY_MAX_DESCS} UMEM chunks of {size} bytes"
        why = "multi_buffer is off" if wanted is False else "this kernel has no XDP_USE_SG, Linux 6.6+"
        return size, f"xdp sends a frame in one {size}-byte UMEM chunk without multi-buffer ({why})"

    # --- sending ---------------------------------------------------------------------------

    def _failure(self, exc: OSError) -> Exception:
        """A wait without progress explained by the socket's statistics (read now, not per send)."""
        if isinstance(exc, TimeoutError):
            invalid = self.statistics()["tx_invalid_descs"]
            if invalid:
                return DeliveryError(
                    f"xdp: the kernel refused {invalid} TX descriptor(s) as invalid (XDP_STATISTICS tx_invalid_descs)"
                )
            return DeliveryError(
                f"xdp: waited {STALL_S} s for the kernel on {self.target.link.ifname} with no progress "
                f"({self.engine.in_flight} chunk(s) in flight)"
            )
        if exc.errno == errno.ENETDOWN:
            return SandboxError(f"xdp: {self.target.link.ifname} is down: sendto() failed with ENETDOWN")
        return DeliveryError(f"xdp: sendto() on {self.target.link.ifname} failed: {exc.strerror}")

    # --- reporting and life cycle -------------------------------------------------------

    def statistics(self) -> dict[str, int]:
        """The socket's XDP_STATISTICS (rx_dropped, rx_invalid_descs, tx_invalid_descs, rx_ring_full,
        rx_fill_ring_empty_descs, tx_ring_empty_descs), plus ``dropped`` (frames the driver dropped:
        sendto EBUSY) and ``kicks`` (sendto calls)."""
        return {**self.xsk.statistics(), "dropped": self.engine.dropped, "kicks": self.engine.kicks}

    def facts(self) -> dict[str, object]:
        """Which AF_XDP mode ran (``xdp_mode``: copy or zerocopy), and whether frames span descriptors."""
        return {"xdp_mode": self.mode, "xdp_multi_buffer": self.multi_buffer}

    def notes(self) -> list[str]:
        """The AF_XDP mode that ran, for the table (copy on lo and veth; zerocopy where the driver has it)."""
        return [f"AF_XDP {self.mode} mode"]

    def problems(self) -> list[str]:
        """One sentence per counter that means frames were lost (empty when none): invalid
        descriptors and frames the driver dropped. tx_ring_empty_descs is not one: the copy path
        counts one each time a kick empties the TX ring, once per span."""
        stats, found = self.statistics(), []
        if stats["tx_invalid_descs"]:
            found.append(f"xdp: {stats['tx_invalid_descs']} TX descriptor(s) refused as invalid (tx_invalid_descs)")
        if stats["dropped"]:
            found.append(f"xdp: {stats['dropped']} frame(s) dropped by the driver after the kernel took them (EBUSY)")
        return found

    def _drop_rings(self) -> None:
        """Forget the ring that views the TX ring's mapping, so the socket can unmap it."""
        self.tx_ring = None
