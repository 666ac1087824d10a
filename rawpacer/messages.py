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
    made_ahead: ClassVar[bool] = True
    """Whether a fill is worth making ahead, during the op before (it makes new bytes each time)."""

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


SEED_BYTES = 32


class SeededSource(MessageSource):
    """A source whose every fill follows from a fresh 32-byte seed: any part of a fill can be made
    again from its seed alone (how a remote reader gets its share of the messages without them
    crossing the wire: rawpacer.remote)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.last_seed: bytes | None = None
        """The seed of the last ``fill``, None before the first."""
        self.next_seed: bytes | None = None
        """Set by a remote reader set: the next ``fill``'s seed, drawn there (rawpacer.remote.wire.chained)."""

    def fill(self, buffer: memoryview | bytearray) -> None:
        """Fresh bytes over the whole buffer, from a seed drawn from os.urandom now (or ``next_seed``)."""
        self.last_seed, self.next_seed = self.next_seed or os.urandom(SEED_BYTES), None
        self.expand(self.last_seed, buffer)

    @abstractmethod
    def expand(self, seed: bytes, buffer: memoryview | bytearray, start: int = 0) -> None:
        """The bytes a fill under ``seed`` makes, from its byte ``start`` on, over ``buffer``."""


class CryptoSource(SeededSource):
    """AES-128-CTR keystream, rekeyed from ``os.urandom`` on every call (a CTR_DRBG-style CSPRNG)."""

    name = "crypto"

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._zeros = memoryview(bytes(size))

    def _zeros_of(self, length: int) -> memoryview:
        if len(self._zeros) < length:
            self._zeros = memoryview(bytes(length))
        return self._zeros[:length]

    def expand(self, seed: bytes, buffer: memoryview | bytearray, start: int = 0) -> None:
        """The keystream under ``seed`` (key, initial counter) from its byte ``start`` on, over ``buffer``."""
        block, skip = divmod(start, 16)  # CTR's counter block is 128 bits, big-endian (NIST SP 800-38A, B.1)
        counter = ((int.from_bytes(seed[16:], "big") + block) % (1 << 128)).to_bytes(16, "big")
        encryptor = Cipher(algorithms.AES(seed[:16]), modes.CTR(counter)).encryptor()
        if skip:
            encryptor.update(bytes(skip))
        encryptor.update_into(self._zeros_of(len(buffer)), buffer)


class FastSource(SeededSource):
    """numpy PCG64 output: fresh every call, not cryptographic. The seed is the generator's 128-bit
    state and increment, so any byte of a fill is reached with PCG's O(log n) ``advance``."""

    name = "fast"

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._bits = np.random.PCG64()

    def expand(self, seed: bytes, buffer: memoryview | bytearray, start: int = 0) -> None:
        """PCG64's little-endian 64-bit words under ``seed``, from byte ``start`` of the fill on."""
        word, skip = divmod(start, 8)
        self._bits.state = {
            "bit_generator": "PCG64",
            "state": {"state": int.from_bytes(seed[:16], "big"), "inc": int.from_bytes(seed[16:], "big") | 1},
            "has_uint32": 0,
            "uinteger": 0,
        }
        self._bits.advance(word)
        length = len(buffer)
        words = self._bits.random_raw((skip + length + 7) // 8).astype("<u8", copy=False)
        np.frombuffer(buffer, dtype=np.uint8)[:] = words.view(np.uint8)[skip : skip + length]


class FixedSource(MessageSource):
    """One random message made once and reused every op (nothing is generated per op)."""

    name = "fixed"
    made_ahead = False

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
