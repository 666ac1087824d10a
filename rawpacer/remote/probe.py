"""``doctor --remote``: can this machine drive readers on a remote host? One check a line.

For each host, in order, each check only when the one before passed: ssh reaches it and logs in
(BatchMode, the user's own keys and known_hosts); the agent there answers the handshake with a
protocol version this side speaks and the capabilities a run needs; its clock's offset from ours
and the bound on it (rawpacer.remote.clock); and a reader binds on the address runs would use
(``--remote-addr``, or the one ssh reached).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass

from rawpacer.errors import RawpacerError
from rawpacer.limits import FIRST_PORT
from rawpacer.remote import clock
from rawpacer.remote.channel import Channel
from rawpacer.remote.readerset import OPEN_TIMEOUT_S, remote_clock
from rawpacer.remote.spec import Host

PROBE_SIZE = 1500
"""The probe reader's message size (the seed's)."""


@dataclass(frozen=True)
class Check:
    """One check of one host: what was checked, whether it passed, what was seen."""

    host: str
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``remote h1 ssh        OK    logged in ...``."""
        return f"remote {self.host} {self.name:<8} {'OK' if self.ok else 'FAIL'}  {self.detail}"


def _connect(host: Host) -> tuple[Channel | None, list[Check]]:
    """The channel, with the ssh and handshake checks; None and the failing check when it cannot start."""
    started = time.monotonic()
    try:
        channel = Channel(host)
    except RawpacerError as exc:
        text = str(exc)
        if text.startswith("ssh to"):
            return None, [Check(host.label, "ssh", False, text)]
        reached = Check(host.label, "ssh", True, "logged in")
        return None, [reached, Check(host.label, "agent", False, text)]
    took = time.monotonic() - started
    assert channel.peer is not None
    peer = channel.peer
    return channel, [
        Check(host.label, "ssh", True, f"logged in and started the agent in {took:.1f} s"),
        Check(
            host.label,
            "agent",
            True,
            f"{peer['software']}, protocol {peer['min_version']}-{peer['version']}, "
            f"capabilities {', '.join(peer['capabilities'])}",
        ),
    ]


def check_host(host: Host, addr: str | None = None) -> Iterator[Check]:
    """The checks of ``host`` as they finish (readers on ``addr``; None: the address ssh reached)."""
    channel, checks = _connect(host)
    yield from checks
    if channel is None:
        return
    try:
        offset = clock.measure(functools.partial(remote_clock, channel), time.time_ns)
        yield Check(host.label, "clock", True, f"{offset.describe()} (spread {offset.spread_ns / 1e3:.1f} µs)")
        try:
            channel.send(
                "open", count=1, size=PROBE_SIZE, first_port=FIRST_PORT, first_slot=0, addr=addr or "", timeout=1.0
            )
            opened = channel.answer("opened", OPEN_TIMEOUT_S)
        except RawpacerError as exc:
            yield Check(host.label, "readers", False, str(exc))
            return
        yield Check(
            host.label,
            "readers",
            True,
            f"a reader bound on {opened['addr']} port {opened['ports'][0]} ({opened['loop']} receive loop)",
        )
    except RawpacerError as exc:
        yield Check(host.label, "channel", False, str(exc))
    finally:
        channel.close()
