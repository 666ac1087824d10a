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
