"""Message sources: fresh bytes for every reader on every op, like the seed's ``getTestMsg``.

``crypto`` (default) is AES-128-CTR keystream under a key and nonce drawn fresh from the OS
(``os.urandom``) on every call: a block cipher in counter mode keyed from a strong entropy source
is the CTR_DRBG construction of NIST SP 800-90A, so its output is cryptographically strong, and
with AES-NI it runs ~15x faster than reading the same amount from ``os.urandom``.
``fast`` is numpy's PCG64 (not cryptographic), ``fixed`` one message reused for ever (the seed's
"if we were allowed to move it out of the loop").
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from rawpacer.errors import UsageError, require
from rawpacer.limits import MAX_MESSAGE_SIZE, MIN_MESSAGE_SIZE


def check_size(size: object) -> int:
    """``size`` if it is a message size (MIN_MESSAGE_SIZE-MAX_MESSAGE_SIZE); UsageError otherwise."""
    if isinstance(size, int) and not isinstance(size, bool) and MIN_MESSAGE_SIZE <= size <= MAX_MESSAGE_SIZE:
        return size
    raise UsageError(f"message size {size!r} is out of range {MIN_MESSAGE_SIZE}-{MAX_MESSAGE_SIZE}")


class MessageSource(ABC):
    """Makes fresh messages of ``size`` bytes: one at a time, or a whole buffer of them at once."""

    name: ClassVar[str]

    def __init__(self, size: int) -> None:
        self.size = check_size(size)

    @staticmethod
    def make(kind: str = "crypto", size: int = 1500) -> MessageSource:
        """The source called ``kind`` (one of ``KINDS``) making ``size``-byte messages."""
        require(kind in _SOURCES, f"message source {kind!r} is not allowed; use one of: {', '.join(KINDS)}")
        return _SOURCES[kind](size)

    @abstractmethod
    def fill(self, buffer: memoryview | bytearray) -> None:
        """Overwrite all of the writable ``buffer`` with fresh bytes (every reader's slot at once)."""

    def message(self) -> bytes:
        """One fresh ``size``-byte message."""
        out = bytearray(self.size)
        self.fill(out)
        return bytes(out)


class CryptoSource(MessageSource):
    """AES-128-CTR keystream, rekeyed from ``os.urandom`` on every call (a CTR_DRBG-style CSPRNG)."""

    name = "crypto"

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._zeros = memoryview(bytes(size))

    def _zeros_of(self, length: int) -> memoryview:
        if len(self._zeros) < length:
            self._zeros = memoryview(bytes(length))
        return self._zeros[:length]

    def fill(self, buffer: memoryview | bytearray) -> None:
        """Fresh AES-128-CTR keystream over the whole buffer, under a key drawn from os.urandom now."""
        seed = os.urandom(32)
        encryptor = Cipher(algorithms.AES(seed[:16]), modes.CTR(seed[16:])).encryptor()
        encryptor.update_into(self._zeros_of(len(buffer)), buffer)


class FastSource(MessageSource):
    """numpy PCG64 output: fresh every call, not cryptographic."""

    name = "fast"

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._bits = np.random.PCG64()

    def fill(self, buffer: memoryview | bytearray) -> None:
        """Fresh PCG64 bytes over the whole buffer (fast, not cryptographic)."""
        length = len(buffer)
        words = self._bits.random_raw((length + 7) // 8)
        np.frombuffer(buffer, dtype=np.uint8)[:] = words.view(np.uint8)[:length]


class FixedSource(MessageSource):
    """One random message made once and reused every op (nothing is generated per op)."""

    name = "fixed"

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._message = os.urandom(size)
        self._filled: object = None

    def fill(self, buffer: memoryview | bytearray) -> None:
        """The fixed message in every slot; a buffer already filled is left as it is."""
        if buffer is self._filled:
            return
        length = len(buffer)
        whole, rest = divmod(length, self.size)
        buffer[: whole * self.size] = self._message * whole
        buffer[whole * self.size : length] = self._message[:rest]
        self._filled = buffer

    def message(self) -> bytes:
        """The fixed message, the same on every call."""
        return self._message


_SOURCES: dict[str, type[MessageSource]] = {cls.name: cls for cls in (CryptoSource, FastSource, FixedSource)}
KINDS = tuple(_SOURCES)
"""The message-source names, in the order ``--payload`` lists them."""


SEQUENCE_BYTES = 8
"""A stream datagram's first bytes: its sequence number (48 bits, big-endian) and a check word."""
MAX_SEQUENCE = (1 << 48) - 1
"""The largest sequence the 48-bit field holds."""


def sequence_bytes(sequence: int) -> bytes:
    """The 8 bytes that carry ``sequence`` at the start of a stream datagram.

    Bytes 0-5 are the sequence, bytes 6-7 the one's complement of the one's-complement sum of their
    three 16-bit words, so the four words always sum to 0xFFFF (negative zero): the Internet
    checksum (RFC 1071) of a UDP datagram is the same whatever sequence it carries, and a writer
    replaying prebuilt frames rewrites these 8 bytes without touching the checksum (RFC 1624's
    incremental update with a zero difference).
    """
    require(0 <= sequence <= MAX_SEQUENCE, f"sequence {sequence} is out of range 0-{MAX_SEQUENCE}")
    total = (sequence >> 32) + ((sequence >> 16) & 0xFFFF) + (sequence & 0xFFFF)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (sequence << 16 | (~total & 0xFFFF)).to_bytes(SEQUENCE_BYTES, "big")


def sequence_of(data: bytes | bytearray | memoryview) -> int | None:
    """The sequence a datagram's first 8 bytes carry, or None when they are no sequence (short, or
    the check word does not match)."""
    if len(data) < SEQUENCE_BYTES:
        return None
    head = bytes(data[:SEQUENCE_BYTES])
    sequence = int.from_bytes(head[:6], "big")
    return sequence if sequence_bytes(sequence) == head else None


def stamp_sequence(slots: np.ndarray, sequence: int) -> None:
    """Write ``sequence`` into the first 8 bytes of every row of ``slots`` (a 2-D uint8 array, one
    message a row): one numpy assignment for a whole fan-out."""
    slots[:, :SEQUENCE_BYTES] = np.frombuffer(sequence_bytes(sequence), np.uint8)
