"""The receiving side of a two-host run: ``rawpacer agent --stdio``, driven by messages on stdin.

It opens a ``ReaderSet`` (the same content checks as a local run) on an address of this host,
arms it for each op with the expected messages the controller sends, answers each op with one
``result``, reads its clock for the controller's offset estimate, and explains losses from this
host's own counters (rawpacer.diagnose). It stops on ``bye``, at end of input (the controller or
the SSH session went away), or after ``IDLE_S`` with no message: nothing is left running.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import time
import types
from typing import Any

from rawpacer import diagnose
from rawpacer.errors import RawpacerError, UsageError
from rawpacer.messages import SEED_BYTES, MessageSource, SeededSource
from rawpacer.readers import OpResult, ReaderSet, ReaderTuning
from rawpacer.remote import clock, outcome, wire

CHAIN_SILENCE_S = 0.5
"""A prearmed op ends after this long with nothing arriving (the controller did not use it)..."""
CHAIN_TIMEOUT_S = 30.0
"""...and at the latest this long after it was armed (a slow writer's fan-out of 10,000 still fits)."""
TUNING = ReaderTuning(spin=False, poll_op=True)
"""The agent's readers sleep until an op's first datagram, then poll until the op is complete
(``poll_op``): a prearmed op keeps them armed through the whole cycle (the verdict's way back, the
controller's next fill), so polling throughout would take a CPU the control channel needs (the op
2.70x a local one against 1.51x sleeping, one-VM rig); sleeping throughout made the sender pay a
wake-up per batch (its send 809-825 µs against 636-754 µs with poll_op; docs/two-hosts.md)."""
IDLE_S = 120.0
"""The agent leaves after this long without a message (a controller that vanished with the link up)."""


def connection_addr() -> str:
    """The address of this host the SSH client reached (SSH_CONNECTION's third word), or ''."""
    words = os.environ.get("SSH_CONNECTION", "").split()
    return words[2] if len(words) == 4 else ""


def local_addresses() -> list[str]:
    """This namespace's global addresses, for the error that names them."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr() if a["scope"] == 0]


def check_addr(addr: str) -> str:
    """``addr`` if it is an address of this host (a socket can bind to it); UsageError naming the ones it has."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((addr, 0))
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (errno.EADDRNOTAVAIL, errno.EINVAL, None):
            raise
        raise UsageError(
            f"--remote-addr {addr!r} is not an address of {socket.gethostname()}; its addresses: "
            f"{', '.join(local_addresses()) or 'none'}"
        ) from None
    return addr


class Agent:
    """One controller's session: its reader set, the counters at the last explain, the clock skew (tests)."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.inbox = wire.Inbox(in_fd, wire.CONTROLLER, "the controller")
        self.out_fd = out_fd
        self.readers: ReaderSet | None = None
        self.counters: diagnose.Counters | None = None
        self.first_slot = 0
        self.seed = b""
        self.source: SeededSource | None = None
        self.staged: tuple[bytes, bytearray] | None = None
        """(seed, its fill of this agent's share): the next chained op's messages, made ahead."""
        self.injected_ns = int(os.environ.get(clock.OFFSET_ENV, "0") or 0)

    def say(self, kind: str, blob: bytes = b"", **fields: Any) -> None:
        """Send one message to the controller."""
        wire.write(self.out_fd, wire.encode(wire.AGENT, kind, blob, **fields))

    def serve(self) -> int:
        """Handshake, then answer messages until bye, end of input or idleness; the exit code."""
        wire.write(self.out_fd, wire.hello(wire.AGENT, software()))
        try:
            wire.check_hello(self.inbox.read(IDLE_S), "the controller")
            while True:
                msg = self.inbox.read(IDLE_S)
                if msg.type == "bye":
                    return 0
                try:
                    self.handle(msg)
                except RawpacerError as exc:
                    self.say("error", text=str(exc), usage=isinstance(exc, UsageError))
        except wire.ProtocolError as exc:
            print(f"rawpacer agent: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            return 1
        finally:
            if self.readers is not None:
                self.readers.close()

    def handle(self, msg: wire.Message) -> None:
        """One request, one answer."""
        kind = msg.type
        if kind == "clock":
            self.say("time", realtime_ns=time.time_ns() + self.injected_ns)
        elif kind == "open":
            self.open(msg)
        elif kind == "explain":
            now = diagnose.snapshot()
            before, self.counters = self.counters or now, now
            self.say("explained", text=diagnose.explain(before, now, lost=msg["lost"]))
        else:
            readers = self.readers
            if readers is None:
                raise UsageError(f"{kind!r} before 'open': no readers yet")
            self.drive(readers, msg)

    def open(self, msg: wire.Message) -> None:
        """A reader set on ``addr`` (default: the address the SSH client reached)."""
        if self.readers is not None:
            self.readers.close()
            self.readers = None
        addr = check_addr(msg["addr"] or connection_addr() or "127.0.0.1")
        where = types.SimpleNamespace(reader_ns="", reader_ip=addr)
        self.first_slot = msg["first_slot"]
        self.source, self.staged = None, None
        self.readers = ReaderSet(
            where, msg["count"], msg["size"], timeout=float(msg["timeout"]), first_port=msg["first_port"], tuning=TUNING
        )
        self.counters = diagnose.snapshot()
        self.say("opened", ports=list(self.readers.ports), loop=self.readers.loop, addr=addr, pid=self.readers.pid)

    def expand(self, readers: ReaderSet, seed: bytes, buffer: memoryview | bytearray) -> None:
        """This agent's share of the fill under ``seed`` (its first slot's byte on) over ``buffer``."""
        assert self.source is not None
        self.source.expand(seed, buffer, self.first_slot * readers.message_size)

    def stage(self, readers: ReaderSet) -> None:
        """Make the next chained op's messages now, while this op's datagrams are on their way, so
        arming that op after this one costs a copy, not the generator's time (off the hot path)."""
        seed = wire.chained(self.seed)
        buffer = self.staged[1] if self.staged is not None else bytearray(len(readers.buffer))
        self.expand(readers, seed, buffer)
        self.staged = (seed, buffer)

    def fill(self, readers: ReaderSet, how: str, blob: bytes) -> None:
        """The expected messages, as ``begin`` says (wire.FILLS): given, made from a seed, or kept."""
        if how in wire.SEEDED:
            if len(blob) != SEED_BYTES:
                raise UsageError(f"a {len(blob)}-byte seed; a {how} fill's is {SEED_BYTES}")
            if self.source is None or self.source.name != how:
                made = MessageSource.make(how, readers.message_size)
                assert isinstance(made, SeededSource)
                self.source = made
            self.seed = blob
            self.expand(readers, blob, readers.buffer)
        elif how == "bytes":
            if len(blob) != len(readers.buffer):
                raise UsageError(f"{len(blob)} message bytes for a {len(readers.buffer)}-byte reader buffer")
            readers.buffer[:] = blob
        elif how != "same":
            raise UsageError(f"fill {how!r} is not allowed; use one of: {', '.join(wire.FILLS)}")

    def report(self, result: OpResult, prearmed: bool = False) -> None:
        """One op's or stream's result, its figures on this host's realtime clock (plus any injected
        skew); ``prearmed``: the next op is already open, on the chained seed."""
        shift = time.time_ns() - time.monotonic_ns()
        verdict = outcome.to_wire(result, shift, self.injected_ns)
        self.say(
            "result", verdict.blob, mode=verdict.mode, deviations=verdict.deviations, arrivals=verdict.arrivals,
            prearmed=prearmed,
        )  # fmt: skip

    def ops(self, readers: ReaderSet, msg: wire.Message) -> None:
        """End the op ``msg`` began; while ops complete (and it asked to prearm), open the next one on
        the chained seed before reporting this one, so the controller can send at once: one message
        per op. A chained op nobody sends to ends after ``CHAIN_SILENCE_S`` empty, and the chain with it."""
        chain = msg["prearm"] and msg["fill"] in wire.SEEDED
        if chain:
            self.stage(readers)
        result = readers.wait(silence=msg["silence"])
        while True:
            prearm = chain and result.ok and not result.timed_out
            if prearm:
                assert self.staged is not None
                self.seed, made = self.staged
                readers.buffer[:] = made
                readers.begin(msg["expected_size"], timestamps=msg["timestamps"])
            self.report(result, prearm)
            if not prearm:
                return
            self.stage(readers)
            timeout, readers.timeout = readers.timeout, max(readers.timeout, CHAIN_TIMEOUT_S)
            try:
                result = readers.wait(silence=max(msg["silence"] or 0.0, CHAIN_SILENCE_S))
            finally:
                readers.timeout = timeout

    def drive(self, readers: ReaderSet, msg: wire.Message) -> None:
        """begin (an op: armed, then its result), end_stream, close_port on the reader set."""
        kind = msg.type
        if kind == "begin":
            self.fill(readers, msg["fill"], msg.blob)
            if msg["mode"] == "op":
                readers.begin(msg["expected_size"], timestamps=msg["timestamps"])
            else:
                readers.begin_stream(msg["expected_size"], timestamps=msg["timestamps"], fanouts=msg["fanouts"])
            self.say("armed")
            if msg["mode"] == "op":  # the op ends here, answered once: the controller sends no wait
                self.ops(readers, msg)
        elif kind == "end_stream":
            self.report(readers.end_stream(msg["sent_per_port"], settle=float(msg["settle"])))
        elif kind == "close_port":
            readers.close_port(msg["port"])
            self.say("done")
        else:
            raise UsageError(f"message {kind!r} is not a request")


def software() -> str:
    """``rawpacer X.Y`` and the Python it runs on, for the hello and the mismatch line."""
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        return f"rawpacer {metadata.version('rawpacer')} (Python {sys.version.split()[0]})"
    return f"rawpacer (Python {sys.version.split()[0]})"


def main() -> int:
    """Serve the controller on stdin/stdout; the protocol owns stdout, so nothing else may print there."""
    out_fd = os.dup(1)
    os.dup2(2, 1)  # a stray print goes to stderr, never into the protocol
    return Agent(0, out_fd).serve()
