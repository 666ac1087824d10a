"""What the controller and ``rawpacer agent --stdio`` say to each other: one message table, defined once.

Like h11, the protocol is data: ``MESSAGES`` names every message type, who sends it and its typed
fields; ``encode`` and ``Inbox`` check a message against the table on both sides, so a field
missing or of the wrong type is one clear error, not a KeyError deep in the agent. A frame is
``!II`` (header length, blob length), a JSON header ``{"type": ..., fields}`` and a binary blob
(the seed or bytes of an op's expected messages, an op's packed verdict and arrivals). JSON rather than marshal: marshal's
format is Python's own and may differ between the two hosts' interpreters.

The first message each way is ``hello`` with the sender's protocol version, the oldest version
it still speaks and its capabilities; ``check_hello`` turns a mismatch into one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import struct
import time
from dataclasses import dataclass
from typing import Any

from rawpacer.errors import RawpacerError

VERSION = 2
"""This side's protocol version; bump it when a message or field changes meaning (2: fills name
their seeded source, ``crypto`` or ``fast``, where 1 said ``key`` for crypto alone; a result's
counts are packed binary, where 1 sent them as JSON)."""
MIN_VERSION = 2
"""The oldest peer version this side still speaks."""
CAPABILITIES = ("readers", "timestamps", "clock", "diagnose")
"""What this agent can do; the controller needs ``REQUIRED`` of them."""
REQUIRED = ("readers", "clock")

CONTROLLER, AGENT = "controller", "agent"
_ANY: tuple[type, ...] = (int, float, str, bool, list, dict, type(None))

MESSAGES: dict[str, tuple[str, dict[str, tuple[type, ...]]]] = {
    # type: (sender, {field: allowed JSON types})
    "hello": ("both", {"version": (int,), "min_version": (int,), "capabilities": (list,), "software": (str,)}),
    "open": (
        CONTROLLER,
        {
            "count": (int,),
            "size": (int,),
            "first_port": (int,),
            "first_slot": (int,),
            "addr": (str,),
            "timeout": (float, int),
        },
    ),
    "opened": (AGENT, {"ports": (list,), "loop": (str,), "addr": (str,), "pid": (int,)}),
    # an op's begin is answered twice: armed (send now), then its result once it is over (no wait request)
    "begin": (
        CONTROLLER,
        {
            "mode": (str,),
            "expected_size": (int,),
            "timestamps": (bool,),
            "silence": (float, int, type(None)),
            "fill": (str,),  # FILLS: how the agent gets its share of the expected messages (the blob)
            "prearm": (bool,),  # after a complete op, arm the next one at once (chained seed)
            "fanouts": (int, type(None)),  # a stream's length when its datagrams carry sequences (readers count order)
        },
    ),
    "armed": (AGENT, {}),
    "end_stream": (CONTROLLER, {"sent_per_port": (int,), "settle": (float, int)}),
    # an op's verdict: its counts packed in the blob (rawpacer.remote.outcome), how many deviating ports and arrivals follow
    "result": (AGENT, {"mode": (str,), "deviations": (int,), "arrivals": (int,), "prearmed": (bool,)}),
    "clock": (CONTROLLER, {}),
    "time": (AGENT, {"realtime_ns": (int,)}),
    "explain": (CONTROLLER, {"lost": (int,)}),
    "explained": (AGENT, {"text": (str,)}),
    "close_port": (CONTROLLER, {"port": (int,)}),
    "done": (AGENT, {}),
    "bye": (CONTROLLER, {}),
    "error": (AGENT, {"text": (str,), "usage": (bool,)}),
}

SEEDED = ("crypto", "fast")
"""Fills that cross the wire as their 32-byte seed: the agent makes its share of the same bytes
(rawpacer.messages.SeededSource.expand), so an op's messages never cross it."""
FILLS = ("bytes", *SEEDED, "same")
"""A begin's blob: the agent's share of the messages as bytes; the seed of a crypto or fast fill;
or nothing, unchanged."""


def chained(seed: bytes) -> bytes:
    """The seed of the fill after one of ``seed``: SHA-256 over a label and it (a hash chain from a
    seed drawn from os.urandom, as Hash_DRBG, NIST SP 800-90A), so controller and agents agree on
    the next op's messages without a message, and the agent can arm that op before it is asked."""
    return hashlib.sha256(b"rawpacer next fill" + seed).digest()


_FRAME = struct.Struct("!II")
MAX_HEADER = 64 << 20  # a result naming 10,000 deviating ports fits well within this


class ProtocolError(RawpacerError):
    """The peer sent something the message table does not allow, or the channel ended or went silent."""


@dataclass(frozen=True)
class Message:
    """One message: its type, its fields (checked against ``MESSAGES``) and its blob."""

    type: str
    fields: dict[str, Any]
    blob: bytes = b""

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]


def check(kind: str, fields: dict[str, Any], sender: str) -> None:
    """ProtocolError unless ``kind`` is in the table, sent by ``sender``, with exactly its typed fields."""
    entry = MESSAGES.get(kind)
    if entry is None:
        raise ProtocolError(f"unknown message type {kind!r} from the {sender}")
    who, spec = entry
    if who not in ("both", sender):
        raise ProtocolError(f"message {kind!r} may not come from the {sender}")
    if set(fields) != set(spec):
        raise ProtocolError(f"message {kind!r} has fields {sorted(fields)}; the table says {sorted(spec)}")
    for name, allowed in spec.items():
        value = fields[name]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ProtocolError(f"message {kind!r} field {name!r} is {type(value).__name__}, not {allowed[0].__name__}")


def encode(sender: str, kind: str, blob: bytes | memoryview = b"", **fields: Any) -> list[bytes | memoryview]:
    """The frame of one message, checked against the table, as pieces to write in order."""
    check(kind, fields, sender)
    header = json.dumps({"type": kind, **fields}, separators=(",", ":")).encode()
    return [_FRAME.pack(len(header), len(blob)), header, blob]


def hello(sender: str, software: str) -> list[bytes | memoryview]:
    """This side's hello: versions and capabilities."""
    return encode(
        sender, "hello", version=VERSION, min_version=MIN_VERSION, capabilities=list(CAPABILITIES), software=software
    )


def check_hello(peer: Message, peer_name: str) -> None:
    """ProtocolError in one line when the peer's version range and ours do not meet, or it lacks a required capability."""
    if peer.type != "hello":
        raise ProtocolError(f"{peer_name} answered {peer.type!r} where 'hello' was expected")
    if peer["version"] < MIN_VERSION or VERSION < peer["min_version"]:
        raise ProtocolError(
            f"protocol mismatch: {peer_name} ({peer['software']}) speaks versions {peer['min_version']}-{peer['version']}, "
            f"this side {MIN_VERSION}-{VERSION}; install the same rawpacer release on both hosts"
        )
    missing = [c for c in REQUIRED if c not in peer["capabilities"]]
    if missing:
        raise ProtocolError(f"{peer_name} lacks {', '.join(missing)}; install the same rawpacer release on both hosts")


def write(fd: int, pieces: list[bytes | memoryview]) -> None:
    """Write a whole frame to ``fd`` (blocking) in one ``writev`` when the pipe takes it: the ssh
    process then reads, encrypts and sends it as one packet, waking once instead of per piece."""
    views = [memoryview(piece).cast("B") for piece in pieces]
    while views:
        done = os.writev(fd, views)
        while views and done >= len(views[0]):
            done -= len(views[0])
            views.pop(0)
        if views:
            views[0] = views[0][done:]


class Inbox:
    """Reads frames from a file descriptor, each within a deadline, and checks them against the table."""

    def __init__(self, fd: int, sender: str, peer_name: str) -> None:
        self.fd = fd
        self.sender = sender
        self.peer_name = peer_name
        self._buffer = bytearray()

    def _fill(self, need: int, deadline: float | None) -> None:
        while len(self._buffer) < need:
            if deadline is not None:
                left = deadline - time.monotonic()
                ready = select.select([self.fd], [], [], max(0.0, left))[0] if left > 0 else []
                if not ready:
                    raise ProtocolError(f"{self.peer_name} did not answer within the time allowed")
            chunk = os.read(self.fd, max(need - len(self._buffer), 1 << 16))
            if not chunk:
                raise ProtocolError(f"{self.peer_name} closed the channel")
            self._buffer += chunk

    def ready(self) -> bool:
        """Whether a message (or part of one) is already waiting, without blocking."""
        return bool(self._buffer) or bool(select.select([self.fd], [], [], 0)[0])

    def read(self, timeout: float | None = None) -> Message:
        """The next message (None timeout: wait for ever), checked; ProtocolError on silence, EOF or a bad message."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._fill(_FRAME.size, deadline)
        header_len, blob_len = _FRAME.unpack_from(self._buffer)
        if header_len > MAX_HEADER:
            raise ProtocolError(
                f"{self.peer_name} sent a {header_len}-byte header; this is not a rawpacer agent channel"
            )
        end = _FRAME.size + header_len + blob_len
        self._fill(end, deadline)
        try:
            header = json.loads(bytes(self._buffer[_FRAME.size : _FRAME.size + header_len]))
        except ValueError:
            raise ProtocolError(f"{self.peer_name} sent a header that is not JSON") from None
        blob = bytes(self._buffer[_FRAME.size + header_len : end])
        del self._buffer[:end]
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            raise ProtocolError(f"{self.peer_name} sent a message without a type")
        kind = header.pop("type")
        check(kind, header, self.sender)
        return Message(kind, header, blob)


INSTALL_HINT = "pip install rawpacer (or clone it and run ./sudo-run.sh doctor), the same release as here"
"""What the one line about a missing or old rawpacer on the remote says to do."""
