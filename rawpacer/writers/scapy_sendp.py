"""``scapy``: every frame built by scapy per message (Ether/IP/UDP/Raw), the slow reference peer.

The frames are scapy's own, not rawpacer's templates, so agreement between this writer and the
others on the same readers cross-checks the hand-built headers. Its layer-2 socket is opened at
construction, i.e. inside the writer's namespace, and reused for every frame (``sendp`` would
open a fresh socket in whatever namespace the call happens to run in).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

from rawpacer.headers.checksum import BytesLike
from rawpacer.target import Target
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import Fit, Knobs, WriterOptions, register

ETH_P_NONE = 0
"""Protocol 0: the socket sends but is handed no received frames."""


class Layers(NamedTuple):
    """The scapy layers a frame is built from."""

    ether: Any
    dot1q: Any
    ip: Any
    ipv6: Any
    fragment_header: Any
    udp: Any
    raw: Any


@register
class ScapyWriter(RawWriter):
    """scapy ``Ether()/[Dot1Q()/]IP()|IPv6()/UDP()/Raw()`` built per message; scapy's fragmenting when fit is fragment."""

    name = "scapy"
    order = 90
    summary = "scapy-built Ether/IP/UDP frames per message on a scapy L2 socket (slow reference)"

    benchtime_cap_s = 0.25

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        from scapy import packet
        from scapy.config import conf
        from scapy.layers import inet, inet6, l2

        self.scapy = Layers(l2.Ether, l2.Dot1Q, inet.IP, inet6.IPv6, inet6.IPv6ExtHdrFragment, inet.UDP, packet.Raw)
        """scapy's layer classes, imported once (importing scapy's layers is also what sets conf.L2socket)."""

        with self.opening():
            self.sock = conf.L2socket(iface=target.link.ifname, type=ETH_P_NONE, promisc=False)
            self.own(self.sock.close)

    def build(self, index: int, message: BytesLike) -> list[bytes]:
        """scapy's frames for ``message`` to port ``index`` under the fit policy: Ether (and Dot1Q)
        over IP or IPv6 over UDP, fragmented by scapy's own ``fragment``/``fragment6``."""
        from scapy.layers.inet import fragment
        from scapy.layers.inet6 import fragment6

        Ether, Dot1Q, IP, IPv6, IPv6ExtHdrFragment, UDP, Raw = self.scapy
        target = self.target
        whole = self.fit is Fit.FRAGMENT and not self.fits(message)
        payload = bytes(message if whole else self.fitted(message))
        link = Ether(src=target.link.src_mac, dst=target.link.dst_mac)
        if target.vlan is not None:
            link = link / Dot1Q(vlan=target.vlan, prio=target.vlan_priority)
        udp = UDP(sport=target.sport, dport=target.ports[index]) / Raw(load=payload)
        if self.family.version == 6:
            ip6 = IPv6(src=target.src_ip, dst=target.dst_ip, hlim=64)
            if not whole:
                return [bytes(link / ip6 / udp)]
            marked = ip6 / IPv6ExtHdrFragment(id=self.next_ip_id()) / udp
            return [bytes(link / piece) for piece in fragment6(marked, self.mtu)]  # type: ignore[no-untyped-call]  # scapy's fragment6() is unannotated
        if not whole:
            return [bytes(link / IP(src=target.src_ip, dst=target.dst_ip, ttl=64, id=0, flags="DF") / udp)]
        datagram = IP(src=target.src_ip, dst=target.dst_ip, ttl=64, id=self.next_ip_id(), flags=0) / udp
        return [bytes(link / piece) for piece in fragment(datagram, fragsize=self.mtu - 20)]  # type: ignore[no-untyped-call]  # scapy's fragment() is unannotated

    def frames_for(self, index: int, message: BytesLike) -> list[bytes]:
        """scapy's own frames for ``message`` (not rawpacer's templates): the cross-check."""
        return self.build(index, message)

    def emitter(self) -> Callable[[bytes], object]:
        """scapy's L2 socket's ``send`` (it takes raw bytes as well as packets)."""
        # SuperSocket.send is annotated for Packet; it sends bytes as they are (raw() of bytes is itself).
        return cast(Callable[[bytes], object], self.sock.send)
