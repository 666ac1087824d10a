"""What every raw writer shares: the MTU fitting policy, one FrameTemplate per port, fresh IP ids
for fragmented datagrams, pcap recording and the send loop, so each raw writer module only says
how one frame leaves (``_emit``) or, for batching writers, overrides ``_send``.

Fitting (``options.fit``): ``trim`` cuts each message to the largest payload one datagram carries
on the link; ``fragment`` sends messages that do not fit as fragments rawpacer builds (IPv4's, or
IPv6's Fragment header: only the source fragments in IPv6), and the readers' kernel reassembles
them; ``strict`` refuses at construction, as the seed's "message too long" did.
"""

from __future__ import annotations

import fcntl
import secrets
import socket
import struct
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from rawpacer import engine
from rawpacer.engine import Engine
from rawpacer.errors import SandboxError, UsageError, require
from rawpacer.headers import UDP_HLEN, FrameTemplate, max_payload
from rawpacer.headers.checksum import BytesLike
from rawpacer.headers.family import Family, family
from rawpacer.headers.fit import check_mtu
from rawpacer.headers.fragment import fragment_spans
from rawpacer.kernel import caps
from rawpacer.pcap import PcapRecorder
from rawpacer.sandbox.netns import current_is_owned
from rawpacer.target import Link, Target
from rawpacer.writers.base import Fit, Knobs, Message, Writer, WriterOptions, pooled

if TYPE_CHECKING:
    from rawpacer._pace import Core
    from rawpacer.engine import Frames
    from rawpacer.traffic.pool import FramePool


def check_raw_allowed(link: Link, options: WriterOptions) -> None:
    """Refuse raw frames outside rawpacer's own namespaces unless the user named the interface.

    Raw writers call this before opening a socket; ``--iface NAME`` (``allow_iface``) is the
    explicit, warned-about way to send on an interface rawpacer did not create.
    """
    if current_is_owned():
        return
    if options.allow_iface == link.ifname:
        warnings.warn(f"sending raw frames on {link.ifname!r}, outside rawpacer's namespaces", stacklevel=2)
        return
    raise SandboxError(
        f"refusing to send raw frames on {link.ifname!r}: it is not in a namespace rawpacer created "
        f"(pass --iface {link.ifname} to allow it explicitly)"
    )


SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1


def check_link(link: Link, ip_version: int = 4) -> None:
    """Clear errors before anything is sent: ``link`` exists in this namespace, is up, and its MTU
    carries the IP version's headers (RFC 791's 68 bytes at least; IPv6's 1280, RFC 8200)."""
    try:
        socket.if_nametoindex(link.ifname)
    except OSError:
        raise SandboxError(f"interface {link.ifname!r} does not exist in this namespace") from None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14x", link.ifname.encode(), 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(probe.fileno(), SIOCGIFFLAGS, request))[1]
    if not flags & IFF_UP:
        raise SandboxError(f"interface {link.ifname!r} is down: nothing was sent (bring it up first)")
    fam = family(ip_version)
    if not isinstance(link.mtu, int) or link.mtu < fam.min_mtu:
        raise UsageError(
            f"interface {link.ifname!r} has MTU {link.mtu}, which cannot carry {fam.name} + UDP "
            f"(allowed: {fam.min_mtu} or more)"
        )


def plan_fit(message_size: int, mtu: int, fit: Fit | str, why: str | None = None, ip_version: int = 4) -> int:
    """The payload each reader receives for ``message_size``-byte messages on a link of ``mtu``.

    UsageError when ``fit`` is strict and the message does not fit one datagram, naming the MTU
    (and ``why`` it is what it is, when that is not simply the link's), the message size and the
    largest size that fits.
    """
    fit, fam = Fit.parse(fit), family(ip_version)
    require(
        isinstance(message_size, int) and 0 <= message_size <= fam.max_udp_payload,
        f"message size {message_size!r} is out of range 0-{fam.max_udp_payload}",
    )
    limit = max_payload(check_mtu(mtu, ip_version), ip_version)
    if message_size <= limit:
        return message_size
    if fit is Fit.TRIM:
        return limit
    if fit is Fit.FRAGMENT:
        return message_size
    raise UsageError(
        f"message too long: {message_size}-byte messages need {message_size + fam.header_len + UDP_HLEN}-byte "
        f"{fam.name} datagrams but {why or f'the link MTU is {mtu}'}; the largest message that fits is {limit} bytes "
        f"(or use fit trim / fragment)"
    )


class RawWriter(Writer):
    """Base of the writers that hand-build every header.

    The send loop is written once here: every message in the span becomes its frames (one, or its
    fragments) and each frame goes to the ``emitter()``, the one hook a per-frame writer implements.
    Batching writers (the TX ring, AF_XDP) override ``_send`` instead.
    """

    raw = True
    tags_vlan = True
    ethernet: ClassVar[bool] = True

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        caps.require(f"the {self.name} writer", caps.RAW, "compare")
        self.fit = Fit.parse(options.fit)
        check_raw_allowed(target.link, options)
        self.family: Family = family(target.ip_version)
        check_link(target.link, self.family.version)
        self.templates = [self.template(port) for port in target.ports]
        link_header = self.templates[0].link_len
        """Ethernet header and VLAN tag: the bytes a frame carries beyond the IP datagram the MTU counts."""
        self.mtu = target.link.mtu
        self.mtu_reason: str | None = None
        """Why ``mtu`` is below the link's, when a writer's own frame limit made it so."""
        limit = self.frame_limit()
        if limit is not None and limit[0] - link_header < self.mtu:
            self.mtu = limit[0] - link_header
            self.mtu_reason = f"{limit[1]}: frames of at most {limit[0]} bytes, an MTU of {self.mtu}"
        version = self.family.version
        self._delivered = plan_fit(options.message_size, self.mtu, self.fit, self.mtu_reason, version)
        self.limit = max_payload(self.mtu, version)
        self.max_frame = link_header + min(self.mtu, self.family.header_len + UDP_HLEN + self._delivered)
        self._ip_id = secrets.randbelow(self.family.max_ip_id) + 1
        self.pcap = PcapRecorder(options.pcap, ethernet=self.ethernet) if options.pcap else None
        if self.pcap is not None:
            self.own(self.pcap.close)

    @property
    def planned_mtu(self) -> int:
        """The MTU the fit policy plans against: the link's, or less when ``frame_limit`` says so."""
        return self.mtu

    def frame_limit(self) -> tuple[int, str] | None:
        """The largest frame (link header included) this writer can put on the link and why, when
        that is less than the link MTU allows; None when the link MTU is the only limit. The fit
        policy then plans against the smaller MTU (``self.mtu``; the link's stays in ``target.link``)."""
        return None

    def template(self, port: int) -> FrameTemplate:
        """The FrameTemplate for one reader port, addressed from ``target`` and its link."""
        link, target = self.target.link, self.target
        return FrameTemplate(
            port,
            sport=target.sport,
            src_ip=target.src_ip,
            dst_ip=target.dst_ip,
            src_mac=link.src_mac,
            dst_mac=link.dst_mac,
            ethernet=self.ethernet,
            vlan=target.vlan,
            vlan_priority=None if target.vlan is None else target.vlan_priority,
        )

    @property
    def delivered_size(self) -> int:
        """The message size, or the trimmed payload under ``trim`` on a small MTU."""
        return self._delivered

    @property
    def frames_per_message(self) -> int:
        """Frames one message takes on this link: 1, or its fragment count under ``fragment``."""
        if self.fit is Fit.FRAGMENT and self._delivered > self.limit:
            return len(fragment_spans(UDP_HLEN + self._delivered, self.mtu, self.family.version))
        return 1

    def next_ip_id(self) -> int:
        """A fresh identification for one fragmented datagram (16 bits in IPv4, 32 in IPv6's Fragment
        header); never 0, which an IP_HDRINCL socket replaces with one of its own per packet
        (raw(7)), so fragments would no longer share it."""
        self._ip_id = self._ip_id % self.family.max_ip_id + 1
        return self._ip_id

    def fits(self, message: BytesLike) -> bool:
        """True when ``message`` goes out as one unfragmented datagram as it is."""
        return len(message) <= self.limit

    def fitted(self, message: BytesLike) -> BytesLike:
        """The part of ``message`` that goes out in one datagram (trim / strict)."""
        return message if len(message) <= self.limit else message[: self.limit]

    def frames_for(self, index: int, message: BytesLike) -> list[bytes]:
        """The frames (or IP packets) that carry ``message`` to port ``index`` under the fit policy."""
        template = self.templates[index]
        if self.fit is Fit.FRAGMENT and not self.fits(message):
            return template.fragments(message, self.mtu, self.next_ip_id())
        return [template.stamp(self.fitted(message))]

    def frames_built_once(self, messages: Sequence[Message]) -> list[Message] | None:
        """Each reader's one frame for ``messages``, or None when they cannot be replayed as single
        prebuilt frames (a message to fragment, frames to record in a pcap)."""
        if self.pcap is not None or (self.fit is Fit.FRAGMENT and not all(self.fits(m) for m in messages)):
            return None
        return [t.stamp(self.fitted(m)) for t, m in zip(self.templates, messages)]

    def record(self, frame: BytesLike) -> None:
        """Append a frame just sent to the pcap file, when one was asked for."""
        if self.pcap is not None:
            self.pcap.record(frame)

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        """Each message's frames, built and handed to the emitter one by one (and recorded)."""
        emit, record, frames_for = self.emitter(), self.record, self.frames_for
        for index in range(start, stop):
            for frame in frames_for(index, messages[index]):
                emit(frame)
                record(frame)
        return stop - start

    def frame_room(self) -> int:
        """The longest prebuilt frame ``send_frames`` takes: the MTU (the writer's own limit, if lower) behind the link header."""
        return self.mtu + self.templates[0].link_len

    def check_frames(self, frames: Sequence[Message]) -> None:
        """Refuse prebuilt frames this writer cannot send: without a link header, or longer than ``frame_room``."""
        require(self.ethernet, f"{self.name} sends IP packets, not frames; use packet-raw, packet-ring, xdp or scapy")
        room = self.frame_room()
        for frame in frames:
            require(len(frame) <= room, f"a {len(frame)}-byte frame is longer than {self.name} sends here ({room})")

    def send_frames(self, frames: Sequence[Message]) -> int:
        """Each prebuilt frame to the emitter as it is (and recorded), one by one."""
        self.check_frames(frames)
        emit, record = self.emitter(), self.record
        for frame in frames:
            emit(frame)  # type: ignore[arg-type]  # a bytes-like object: every emitter sends any buffer
            record(frame)
        return len(frames)

    pool_batch = 64
    """Frames ``send_pool`` hands the engine at once unpaced (a replay at top speed)."""
    _pool_engine: Engine | None = None

    def frame_engine(self) -> Engine | None:
        """The engine this writer's prebuilt frames leave through from C; None: they go frame by frame in Python."""
        return None

    def send_pool(self, data: Message, at: Sequence[int], lengths: Sequence[int], core: Core | None) -> int | None:
        """Prebuilt frames in one buffer through ``frame_engine`` (made once), one a departure of
        ``core`` or ``pool_batch`` a call unpaced (not with a pcap to record)."""
        if self.pcap is not None:
            return None
        if self._pool_engine is None:
            self._pool_engine = self.frame_engine()
        sender = self._pool_engine
        if sender is None or not len(at):
            return None if sender is None else 0
        require(self.ethernet, f"{self.name} sends IP packets, not frames; use packet-raw, packet-ring, xdp or scapy")
        longest, room = max(lengths), self.frame_room()
        require(longest <= room, f"a {longest}-byte frame is longer than {self.name} sends here ({room})")
        pool = engine.Pool(data, at, lengths)
        try:
            return sender.send(pool, 0, len(at), 1 if core is not None else self.pool_batch, core)
        except OSError as exc:
            raise self._failure(exc) from None
        finally:
            pool.release()

    def pooled(
        self, sender: Engine | None, pool: FramePool, batch: int, destinations: list[tuple[str, int]] | None = None
    ) -> Frames | None:
        """A shaped stream's frames as ``base.pooled`` hands them to ``sender``, or None with a pcap to
        record (the engine records nothing): what this writer's ``pool_frames`` returns."""
        return None if self.pcap is not None else pooled(sender, pool, batch, destinations=destinations)

    def _failure(self, exc: OSError) -> Exception:
        """The error to raise for a failed engine send, in this writer's terms."""
        return exc

    def unless_fragmenting(self, sock: socket.socket) -> socket.socket | None:
        """``sock`` as the writer's stamping socket, unless a message may leave as several fragments."""
        return None if self.fit is Fit.FRAGMENT else sock

    def emitter(self) -> Callable[[bytes], object]:
        """What puts one built frame (or IP packet) on its way: the per-frame writer's one hook,
        fetched once per send so the loop calls the socket's own method directly."""
        raise NotImplementedError(f"{self.name} sends in batches and overrides _send")
