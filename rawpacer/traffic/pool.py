"""A stream's frame pool: every frame a shaped stream sends, built once in bulk, cycled by the send loop.

Frame k of a stream is ``pool[k % len(pool)]``, so the send path (the writer's transmit
engine, ``Writer.pool_frames``) does no Python work per packet. The pool is built from one ``FrameTemplate``
per reader port and that port's message: a frame to reader slot s carries a prefix of slot s's
message (the readers check ``datagram == message[:len]``), ``--sizes`` sets each frame's length and
``--vary dport/dst-ip`` (which choose the reader) are written into its fields, with numpy a column at
a time, checksums updated as RFC 1624 (eqn. 3) says: ``HC' = ~(~HC + ~m + m')`` over the words that
changed. The other varied fields (``stamp.STAMPED``) are stamped per frame by the engine as frame k
leaves (``FramePool.stamps``; ``FramePool.leaving`` is the numpy twin of what leaves).

Its length is one whole period of the pool's shape: the least common multiple of the fan-out's
ports (when dport is not varied), the size mix's period and each pooled ``inc`` variation's span, so
the stream is exactly that shape repeated. A pooled ``random`` variation (dport, dst-ip) is at least
``RANDOM_DRAWS`` draws that repeat with the pool; a period past ``MAX_FRAMES`` frames (or ``MAX_BYTES``)
is cut there. Stamped fields never set the period: their values run on with k, never repeating early.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rawpacer.errors import require
from rawpacer.headers import ETH_HLEN, UDP_HLEN, FrameTemplate
from rawpacer.headers.checksum import BytesLike
from rawpacer.traffic.sizes import SizeMix
from rawpacer.traffic.stamp import STAMPED, FieldStamp, Layout, compile_stamps
from rawpacer.traffic.vary import Variation

RANDOM_DRAWS = 4096
"""A pooled random variation's pool holds at least this many draws (the stream repeats them in that order)."""
STAMPED_POOL = 256
"""The fewest frames a pool with stamped fields holds: the sendmmsg back end stamps a frame in the pool
itself, so a paced burst can take no more frames in one call than the pool has (each must leave before
its next round is stamped)."""
MAX_FRAMES = 1 << 16
"""The most frames a pool holds: a longer period is cut here."""
MAX_BYTES = 8 << 20
"""The most bytes a pool holds (8 MiB; one fan-out may hold more): a period of larger frames is cut sooner,
so the pool the send loop cycles stays near the CPU's caches rather than spread over main memory."""

FCS_LEN = 4
"""The Ethernet frame check sequence a counted frame size includes (RFC 2544 section 9.1) and no buffer holds."""

KERNEL_FIELDS = ("dport", "dst-ip")
"""What a writer whose headers the kernel builds can still vary: its destination (sendto's address)."""
PACKET_FIELDS = ("sport", "dport", "src-ip", "dst-ip", "flow-label")
"""What a writer that builds IP headers but not the link header (ip-raw) can vary."""


def payload_of(size: int, ip_version: int) -> int:
    """The UDP payload of a counted frame of ``size`` bytes (FCS + Ethernet + IP + UDP around it); at least 0."""
    return max(0, size - FCS_LEN - ETH_HLEN - (20 if ip_version == 4 else 40) - UDP_HLEN)


@dataclass(frozen=True)
class FramePool:
    """The frames of one shaped stream, back to back in ``data``: frame i is ``data[offsets[i]:][:lengths[i]]``,
    bound for reader ``slots[i]``, counted as a ``sizes[i]``-byte frame (RFC 2544), its payload from
    byte ``payload_at``; ``stamped``, the variations the engine stamps per frame into frames of ``layout``."""

    data: bytearray
    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    slots: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    payload_at: int
    dst_ips: tuple[str, ...]
    """Each frame's destination address (what a kernel writer's sendto names), as text."""
    dports: npt.NDArray[np.int64]
    whole: bool
    """True when the pool is one whole period of its shape; False when it was cut or holds random draws
    (of dport or dst-ip: stamped fields never make it False)."""
    layout: Layout
    stamped: Mapping[str, Variation] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def stamps(self) -> tuple[FieldStamp, ...]:
        """The engine's spec of the stamped fields (``Engine.send``'s ``stamps``): empty when none vary."""
        return compile_stamps(self.layout, self.stamped)

    def leaving(self, first: int, count: int) -> list[bytes]:
        """Frames ``first .. first+count-1`` of the stream as they leave, the stamped fields written in
        (numpy, a column at a time, as ``build_pool`` writes the pooled ones): the engine's twin."""
        picked = (np.arange(first, first + count, dtype=np.int64)) % len(self)
        values = {name: v.values(count, first) for name, v in self.stamped.items()}
        data = np.frombuffer(self.data, dtype=np.uint8)
        out: list[bytes] = [b""] * count
        for length in np.unique(self.lengths[picked]).tolist():
            chosen = np.flatnonzero(self.lengths[picked] == length)
            rows = data[self.offsets[picked[chosen]][:, None] + np.arange(length)]
            for name, column in values.items():
                _stamp(rows, self.layout, name, column[chosen])
            for at, row in zip(chosen.tolist(), rows):
                out[at] = row.tobytes()
        return out

    def frames(self, skip: int = 0) -> list[memoryview]:
        """Each frame as a read-only view, its first ``skip`` bytes left out (``payload_at``: the payloads
        a kernel UDP socket sends)."""
        view = memoryview(self.data)
        return [view[o + skip : o + n] for o, n in zip(self.offsets.tolist(), self.lengths.tolist())]

    def addresses(self) -> list[tuple[str, int]]:
        """Each frame's (destination address, destination port): a kernel writer's sendto address."""
        return list(zip(self.dst_ips, self.dports.tolist()))

    def taken(self, total: int) -> npt.NDArray[np.int64]:
        """How often each pool frame is sent in a stream of ``total`` frames (frame k is pool[k % len])."""
        rounds, rest = divmod(total, len(self))
        counts = np.full(len(self), rounds, dtype=np.int64)
        counts[:rest] += 1
        return counts

    def per_slot(self, total: int, slots: int) -> npt.NDArray[np.int64]:
        """Datagrams each of ``slots`` readers receives from a stream of ``total`` frames."""
        return np.bincount(self.slots, weights=self.taken(total), minlength=slots).astype(np.int64)

    def per_size(self, total: int) -> dict[int, int]:
        """Frames of each size in a stream of ``total`` frames, by size (RFC 2544's count)."""
        counts = self.taken(total)
        return {int(s): int(counts[self.sizes == s].sum()) for s in np.unique(self.sizes)}


def period_of(ports: int, sizes: SizeMix | None, varies: Mapping[str, Variation]) -> tuple[int, bool]:
    """(frames, whole): the pool's period, at least ``RANDOM_DRAWS`` with a pooled random variation, cut at
    ``MAX_FRAMES``; the stamped fields (``STAMPED``) take no part but for making it ``STAMPED_POOL`` frames
    at least, the period repeated."""
    stamped = any(name in STAMPED for name in varies)
    varies = {name: v for name, v in varies.items() if name not in STAMPED}
    parts = [1 if "dport" in varies else ports, sizes.period if sizes is not None else 1]
    parts += [v.span for v in varies.values() if v.mode == "inc" and v.span <= MAX_FRAMES]
    whole = all(v.mode == "inc" and v.span <= MAX_FRAMES for v in varies.values())
    period = 1
    for part in parts:
        period = math.lcm(period, part)
        if period > MAX_FRAMES:
            return MAX_FRAMES - MAX_FRAMES % parts[0], False
    if not whole:
        period *= math.ceil(RANDOM_DRAWS / period)
    if stamped:
        period *= math.ceil(STAMPED_POOL / period)
    return period, whole


def _words(column: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """An (n, 2k) byte column as its k big-endian 16-bit words per row, widened for sums."""
    return column.reshape(len(column), -1, 2).astype(np.uint64) @ np.array([256, 1], dtype=np.uint64)


def _adjust(
    rows: npt.NDArray[np.uint8], at: int, old: npt.NDArray[np.uint64], new: npt.NDArray[np.uint64], udp: bool
) -> None:
    """RFC 1624 eqn. 3 for the checksum at byte ``at`` of every row: ``HC' = ~(~HC + ~m + m')``, the changed
    words ``old`` -> ``new`` (one row each). A UDP checksum that comes to 0 is sent as 0xFFFF, its other
    one's-complement zero: 0 means "no checksum" (RFC 768) and is not allowed over IPv6 (RFC 8200 8.1)."""
    checksum = _words(rows[:, at : at + 2])[:, 0]
    total = (~checksum & 0xFFFF) + (~old & 0xFFFF).sum(axis=1) + new.sum(axis=1)
    for _ in range(3):
        total = (total & 0xFFFF) + (total >> 16)
    result = ~total & 0xFFFF
    if udp:
        result[result == 0] = 0xFFFF
    result = result.astype(">u2")
    rows[:, at : at + 2] = result.view(np.uint8).reshape(-1, 2)


def _stamp(rows: npt.NDArray[np.uint8], lay: Layout, field: str, values: npt.NDArray[np.generic]) -> None:
    """Write one varied field into every row, checksums updated (RFC 1624)."""
    if field in ("vlan", "flow-label"):
        if field == "vlan":
            require(lay.vlan >= 0, "--vary vlan needs tagged frames: give --vlan ID too")
            at, mask, width = lay.vlan, 0x0FFF, 2  # the tag's VID, its priority bits kept (IEEE 802.1Q)
        else:
            require(lay.version == 6, "--vary flow-label needs IPv6 (-6)")
            at, mask, width = lay.ip, 0x000FFFFF, 4  # version, traffic class, flow label (RFC 8200)
        word = _words(rows[:, at : at + width]) @ np.array([1 << 16, 1], dtype=np.uint64)[-(width // 2) :]
        word = (word & ~np.uint64(mask)) | values.astype(np.uint64)
        rows[:, at : at + width] = word.astype(">u4" if width == 4 else ">u2").view(np.uint8).reshape(-1, width)
        return  # neither is in a checksum: the IPv6 pseudo-header holds no flow label (RFC 8200 8.1)
    if field == "sport":
        at, new_bytes = lay.udp, values.astype(">u2").view(np.uint8).reshape(-1, 2)
    else:
        at = lay.src if field == "src-ip" else lay.dst
        if lay.version == 4:
            new_bytes = values.astype(">u4").view(np.uint8).reshape(-1, 4)
        else:
            new_bytes = np.asarray(values, dtype=np.uint8).reshape(-1, 16)
    width = new_bytes.shape[1]
    old, new = _words(rows[:, at : at + width].copy()), _words(new_bytes)
    rows[:, at : at + width] = new_bytes
    _adjust(rows, lay.udp_checksum, old, new, udp=True)  # addresses are in the pseudo-header (RFC 768, RFC 8200 8.1)
    if field != "sport" and lay.ip_checksum is not None:
        _adjust(rows, lay.ip_checksum, old, new, udp=False)  # ... and in IPv4's own header (RFC 791)


def build_pool(
    templates: Sequence[FrameTemplate],
    messages: Sequence[BytesLike],
    *,
    sizes: SizeMix | None = None,
    varies: Mapping[str, Variation] | None = None,
    payload_len: int | None = None,
) -> FramePool:
    """The pool of a stream to ``len(templates)`` readers: ``templates[s]`` and ``messages[s]`` are reader
    slot s's. Frame sizes from ``sizes`` (else every payload ``payload_len``, default the message's
    length), fields from ``varies``; frame i goes to slot i % readers, or with ``dport`` varied to the
    slot whose template has that port (UsageError, one line, for a dport no reader has)."""
    varies = dict(varies or {})
    require(len(templates) == len(messages) and len(templates) > 0, "give one template and one message per reader")
    ports = [t.fields.dport for t in templates]
    lay = Layout(templates[0])
    stamped = {name: v for name, v in varies.items() if name in STAMPED}
    compile_stamps(lay, stamped)  # checked now, before any bytes: a vlan without a tag, a flow label over IPv4
    period, whole = period_of(len(templates), sizes, varies)
    plain = len(messages[0]) if payload_len is None else payload_len
    if sizes is not None:
        counted = sizes.sequence(period)
        payloads = np.array([payload_of(int(s), lay.version) for s in counted], dtype=np.int64)
    else:
        payloads = np.full(period, plain, dtype=np.int64)
        counted = payloads + FCS_LEN + ETH_HLEN + (20 if lay.version == 4 else 40) + UDP_HLEN
    frame_lens = payloads + templates[0].header_len
    fits = int(np.searchsorted(np.cumsum(frame_lens), MAX_BYTES, side="right"))
    if fits < period:  # cut where the bytes run out, after a whole fan-out (at least one)
        unit = 1 if "dport" in varies else len(templates)
        period, whole = max(unit, fits - fits % unit), False
        counted, payloads, frame_lens = counted[:period], payloads[:period], frame_lens[:period]
    values = {name: v.values(period) for name, v in varies.items() if name not in STAMPED}
    if "dport" in values:
        index = {port: slot for slot, port in enumerate(ports)}
        wanted = values["dport"].astype(np.int64)
        missing = sorted(set(wanted.tolist()) - set(index))
        require(
            not missing,
            f"--vary dport: port {missing[0] if missing else 0} has no reader (readers: {ports[0]}-{ports[-1]})",
        )
        slots = np.array([index[p] for p in wanted.tolist()], dtype=np.int64)
    else:
        slots = np.arange(period, dtype=np.int64) % len(templates)
    longest = int(payloads.max())
    require(
        all(len(m) >= longest for m in messages), f"{longest}-byte payloads need messages of at least {longest} bytes"
    )
    offsets = np.zeros(period, dtype=np.int64)
    offsets[1:] = np.cumsum(frame_lens)[:-1]
    data = np.zeros(int(frame_lens.sum()), dtype=np.uint8)
    for length in np.unique(payloads).tolist():
        chosen = np.flatnonzero(payloads == length)
        bases = np.stack([np.frombuffer(t.stamp(bytes(m[:length])), np.uint8) for t, m in zip(templates, messages)])
        rows = bases[slots[chosen]]
        for name, column in values.items():
            if name != "dport":
                _stamp(rows, lay, name, column[chosen])
        width = rows.shape[1]
        data[(offsets[chosen][:, None] + np.arange(width)).ravel()] = rows.ravel()
    dst = values.get("dst-ip")
    if dst is None:
        dst_ips = tuple(str(ipaddress.ip_address(templates[s].fields.dst_ip)) for s in slots.tolist())
    else:
        raw = dst.tolist() if lay.version == 4 else [bytes(r) for r in dst]
        dst_ips = tuple(str(ipaddress.ip_address(a)) for a in raw)
    return FramePool(
        data=bytearray(data.tobytes()),
        offsets=offsets,
        lengths=frame_lens,
        slots=slots,
        sizes=np.asarray(counted, dtype=np.int64),
        payload_at=templates[0].header_len,
        dst_ips=dst_ips,
        dports=np.array([ports[s] for s in slots.tolist()], dtype=np.int64),
        whole=whole,
        layout=lay,
        stamped=stamped,
    )
