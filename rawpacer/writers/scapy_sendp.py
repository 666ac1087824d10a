"""``scapy``: every frame built by scapy per message (Ether/IP/UDP/Raw), the slow reference peer.

The frames are scapy's own, not rawpacer's templates, so agreement between this writer and the
others on the same readers cross-checks the hand-built headers. Its layer-2 socket is opened at
construction, i.e. inside the writer's namespace, and reused for every frame (``sendp`` would
open a fresh socket in whatever namespace the call happens to run in).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from rawpacer.headers.checksum import BytesLike
from rawpacer.target import Target
from rawpacer.writers._raw import RawWriter
from rawpacer.writers.base import Fit, Knobs, WriterOptions, register

ETH_P_NONE = 0
"""Protocol 0: the socket sends but is handed no received frames."""


@register
class ScapyWriter(RawWriter):
    """scapy ``Ether()/IP()/UDP()/Raw()`` built per message; ``fragment()`` when fit is fragment."""

    name = "scapy"
    order = 90
    summary = "scapy-built Ether/IP/UDP frames per message on a scapy L2 socket (slow reference)"

    benchtime_cap_s = 0.25

    def __init__(self, target: Target, options: WriterOptions, knobs: Knobs | None = None) -> None:
        super().__init__(target, options, knobs)
        from scapy.config import conf
        from scapy.layers.inet import IP, UDP, fragment
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw

        self._layers = (Ether, IP, UDP, Raw, fragment)
        with self.opening():
            self.sock = conf.L2socket(iface=target.link.ifname, type=ETH_P_NONE, promisc=False)
            self.own(self.sock.close)

    def build(self, index: int, message: BytesLike) -> list[bytes]:
        """scapy's frames for ``message`` to port ``index`` under the fit policy."""
        ether_cls, ip_cls, udp_cls, raw_cls, fragment = self._layers
        link, target = self.target.link, self.target
        whole = self.fit is Fit.FRAGMENT and not self.fits(message)
        payload = bytes(message if whole else self.fitted(message))
        ip = ip_cls(
            src=target.src_ip,
            dst=target.dst_ip,
            ttl=64,
            id=self.next_ip_id() if whole else 0,
            flags=0 if whole else "DF",
        )
        packet = (
            ether_cls(src=link.src_mac, dst=link.dst_mac)
            / ip
            / udp_cls(sport=target.sport, dport=target.ports[index])
            / raw_cls(load=payload)
        )
        if whole:
            pieces = fragment(packet, fragsize=self.mtu - 20)  # type: ignore[no-untyped-call]  # scapy's fragment() is unannotated
            return [bytes(p) for p in pieces]
        return [bytes(packet)]

    def frames_for(self, index: int, message: BytesLike) -> list[bytes]:
        """scapy's own frames for ``message`` (not rawpacer's templates): the cross-check."""
        return self.build(index, message)

    def emitter(self) -> Callable[[bytes], object]:
        """scapy's L2 socket's ``send`` (it takes raw bytes as well as packets)."""
        # SuperSocket.send is annotated for Packet; it sends bytes as they are (raw() of bytes is itself).
        return cast(Callable[[bytes], object], self.sock.send)
