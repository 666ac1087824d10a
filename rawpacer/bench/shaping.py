"""Traffic shapes reaching a stream: ``--sizes`` and ``--vary`` checked against the run, a writer's frame
pool built, the pool handed to the writer's transmit engine, and what the readers saw counted per reader and per size.

The pool (``rawpacer.traffic.pool``) is writer-independent: built from the writer's FrameTemplates
(a raw writer's own, or for a kernel UDP writer templates of the same addresses whose payloads it
sends), it leaves through the writer's transmit engine, as the writer's one hook hands it
(``Writer.pool_frames``): frames, IP packets or datagrams, each to its own destination.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from rawpacer.bench.rfc2544_suite.sizes import payload_for
from rawpacer.engine import Frames
from rawpacer.errors import require
from rawpacer.headers import FrameTemplate
from rawpacer.limits import MAX_SEED
from rawpacer.pacing import link_bytes
from rawpacer.readers import Counts, OpResult
from rawpacer.readers.tally import PortTally
from rawpacer.target import Target
from rawpacer.traffic import SizeMix, Variation, parse_sizes, parse_varies
from rawpacer.traffic.pool import FCS_LEN, KERNEL_FIELDS, PACKET_FIELDS, FramePool, build_pool
from rawpacer.traffic.vary import Allowed
from rawpacer.writers import base as registry
from rawpacer.writers.base import Message, Writer


@dataclass(frozen=True)
class ShapeSpec:
    """``--sizes`` and ``--vary`` as checked before a run: the mix (None: every frame one size), each
    variation by field, and the seed of the random ones (recorded in the JSON)."""

    sizes: SizeMix | None = None
    varies: Mapping[str, Variation] = dataclasses.field(default_factory=dict)
    seed: int | None = None

    def params(self) -> dict[str, object]:
        """The shape as JSON records it."""
        return {
            "sizes": None if self.sizes is None else str(self.sizes),
            "vary": [f"{v.field}={v.low}-{v.high}:{v.mode}" for v in self.varies.values()],
            "vary_seed": self.seed,
        }


def can_shape(name: str) -> bool:
    """True when writer ``name`` sends a frame pool: its class has the hook (``Writer.pool_frames``)."""
    return registry.get(name).pool_frames is not Writer.pool_frames


def shapers() -> str:
    """The registered writers that can send a frame pool, as a message names them."""
    return ", ".join(n for n in registry.names() if can_shape(n))


def stampable(name: str) -> tuple[str, ...]:
    """The fields writer ``name`` can vary: all when it builds the link header, IP and UDP fields when it
    builds the IP header, only the destination (its sendto address) when the kernel builds the headers."""
    cls = registry.get(name)
    if cls.tags_vlan:
        return (*PACKET_FIELDS, "vlan")
    return PACKET_FIELDS if cls.raw else KERNEL_FIELDS


def check_shape(
    sizes: str | None,
    vary: str | Sequence[str] | None,
    seed: int | str | None,
    *,
    writers: Sequence[str],
    mode: str,
    ip_version: int,
    mtu: int | None,
    readers: Sequence[int],
    first_port: int,
    addresses: tuple[str, str],
    remote: bool,
    vlan: int | None = None,
) -> ShapeSpec | None:
    """The shape asked for, every value checked (UsageError, one line) before anything is created;
    None when neither ``--sizes`` nor ``--vary`` is given. ``addresses``: (writer, readers) of the sandbox,
    whose readers listen on one address (so dst-ip varies within it) and take frames of the run's VLAN only."""
    texts = (vary,) if isinstance(vary, str) else tuple(vary or ())
    if sizes is None and not texts:
        return None
    given = "--sizes" if sizes is not None else "--vary"
    require(mode == "stream", f"{given} shapes a stream; use it with --mode stream")
    require(not remote, f"{given}: readers on other hosts do not count per size yet; drop --remote")
    plain = [n for n in writers if not can_shape(n)]
    require(not plain, f"{given}: {', '.join(plain)} cannot send a frame pool; use {shapers()}")
    mix = parse_sizes(sizes) if sizes is not None else None
    if mix is not None:
        for size in mix.sizes:
            payload_for(size, ipv6=ip_version == 6, mtu=mtu)
    writer_ip, reader_ip = addresses
    allowed: dict[str, Allowed] = {
        "dport": (first_port, first_port + min(readers) - 1),  # every run of a readers sweep has these
        "dst-ip": (reader_ip, reader_ip),
        "src-ip": _subnet(writer_ip),
    }
    if vlan is not None:  # the readers' end pops the run's tag and drops every other id (sandbox/vlan.py)
        allowed["vlan"] = (vlan, vlan)
    number = None
    if seed is not None:
        text = str(seed).strip()
        require(text.isdigit() and int(text) <= MAX_SEED, f"seed {seed!r} is not allowed; use an integer 0-{MAX_SEED}")
        number = int(text)
    varies = parse_varies(texts, allowed=allowed, seed=number, ip_version=ip_version)
    for name in writers:
        cannot = [f for f in varies if f not in stampable(name)]
        require(
            not cannot,
            f"--vary {cannot[0] if cannot else ''}: {name} cannot stamp it (the kernel builds that header); use packet-raw",
        )
    require(vlan is not None or "vlan" not in varies, "--vary vlan sets the 802.1Q tag's id: give --vlan ID too")
    seeds = {v.seed for v in varies.values() if v.seed is not None}
    return ShapeSpec(mix, varies, seeds.pop() if seeds else number)


def _subnet(writer_ip: str) -> str:
    """The writer's own /24 (IPv4) or /64 (IPv6): sources the readers' kernel takes as on-link."""
    return f"{writer_ip.rsplit('.', 1)[0]}.0/24" if ":" not in writer_ip else f"{writer_ip.rsplit(':', 1)[0]}:0/64"


def message_size(spec: ShapeSpec, size: int, ip_version: int) -> int:
    """The readers' message size for a shaped run: the mix's largest payload, or ``size`` without a mix."""
    if spec.sizes is None:
        return size
    return max(payload_for(s, ipv6=ip_version == 6) for s in spec.sizes.sizes)


def mean_link_bytes(mix: SizeMix, *, ip_version: int = 4, mtu: int | None = None, vlan: bool = False) -> Fraction:
    """A mix's mean link bytes per frame, weighted, as a bit ``--rate`` counts each datagram
    (``rawpacer.pacing.link_bytes``): ``--rate 100Mbit --sizes imix`` paces 100e6 / (8 x this) frames/s."""
    ipv6 = ip_version == 6
    total = sum(
        weight * link_bytes(payload_for(size, ipv6=ipv6), mtu=mtu, ip_version=ip_version, vlan=vlan)
        for size, weight in zip(mix.sizes, mix.weights)
    )
    return Fraction(total, mix.period)


def _templates(writer: Writer) -> list[FrameTemplate]:
    """The writer's own FrameTemplates (raw writers), or for a kernel UDP writer IP templates of its addresses."""
    own = getattr(writer, "templates", None)
    if own is not None:
        return list(own)
    target: Target = writer.target
    return [
        FrameTemplate(port, sport=target.sport, src_ip=target.src_ip, dst_ip=target.dst_ip, ethernet=False)
        for port in target.ports
    ]


@dataclass
class Shaped:
    """A writer's frame pool and how it leaves: ``frames``, the pool as the writer's engine sends it
    (``Writer.pool_frames``); ``sent``, frames of the pool's stream sent so far (the next is
    pool[sent % len])."""

    pool: FramePool
    writer: Writer
    frames: Frames
    sent: int = 0

    @property
    def expected_size(self) -> int:
        """The longest payload: what the readers compare at most."""
        return int((self.pool.lengths - self.pool.payload_at).max())

    def recount(self, result: OpResult, start: int, total: int) -> OpResult:
        """The readers' result with each reader's own expected count (a varied dport spreads datagrams
        unevenly) and the per-size counts: frames [start, start + total) of the pool were sent."""
        pool, ports = self.pool, self.writer.target.ports
        shift = start % len(pool)
        expected = pool.per_slot(shift + total, len(ports)) - pool.per_slot(shift, len(ports))
        deviations: dict[int, PortTally] = {}
        ported = Counts()
        for slot, port in enumerate(ports):
            seen = (
                Counts(delivered=result.per_port) if port not in result.deviations else result.deviations[port].counts
            )
            want = int(expected[slot])
            good = seen.delivered - seen.corrupt
            counts = seen._replace(
                intact=min(good, want), duplicate=max(0, good - want), lost=max(0, want - seen.delivered)
            )
            ported += counts
            if counts.intact != want or counts.corrupt or counts.late:
                deviations[port] = PortTally(port, counts)
        totals = result.counts._replace(intact=ported.intact, duplicate=ported.duplicate, lost=ported.lost)
        return dataclasses.replace(result, sent=total, counts=totals, deviations=deviations)

    def per_size(self, result: OpResult, start: int, total: int) -> dict[int, dict[str, int]]:
        """Sent, delivered and intact frames of each size (RFC 2544's count) in the stream."""
        pool = self.pool
        shift = start % len(pool)
        before, after = pool.per_size(shift), pool.per_size(shift + total)
        overhead = int(pool.sizes[0] - (pool.lengths[0] - pool.payload_at))
        rows: dict[int, dict[str, int]] = {}
        for size in sorted(after):
            received, good = result.lengths.get(size - overhead, (0, 0))
            rows[size] = {"sent": after[size] - before.get(size, 0), "delivered": received, "intact": good}
        return rows


def shape_writer(spec: ShapeSpec, writer: Writer, messages: Sequence[Message]) -> Shaped:
    """The frame pool of ``writer``'s stream to its readers (``messages[i]`` is reader i's message)."""
    templates = _templates(writer)
    payload = writer.delivered_size
    pool = build_pool(templates, messages, sizes=spec.sizes, varies=spec.varies, payload_len=payload)
    longest = int((pool.lengths - pool.payload_at).max())
    require(
        longest <= payload,
        f"--sizes: {longest + pool.payload_at + FCS_LEN}-byte frames do not fit {writer.name}'s MTU here "
        f"({payload} payload bytes at most); give --mtu or smaller sizes",
    )
    frames = writer.pool_frames(pool)
    require(
        frames is not None,
        f"{writer.name} cannot send a frame pool here (it records a pcap, or the transmit engine is not built); "
        "drop --pcap or reinstall with a C compiler",
    )
    assert frames is not None
    return Shaped(pool, writer, frames)
