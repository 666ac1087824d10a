"""The exceptions rawpacer raises on purpose; the CLI turns each into one line and an exit code."""

from __future__ import annotations

import errno


class RawpacerError(Exception):
    """Base of every error rawpacer raises on purpose (message is meant for the user)."""

    exit_code = 1


class UsageError(RawpacerError, ValueError):
    """A value the user gave is not allowed; the message names the value and what is allowed."""

    exit_code = 2


class DutSetupError(UsageError):
    """A line setting up the device under test failed (a --dut profile's command or a --dut-setup line):
    the message names the line's number, the line, and the first line it wrote to stderr."""


class CaptureError(UsageError):
    """A capture file given to replay cannot be read: not pcap or pcapng, empty, truncated, corrupt, or a
    link type rawpacer does not rewrite. A UsageError (exit 2) because the file is an argument the user
    gave, like any other bad value; its own class so a caller that counts the frames read before a
    truncation can tell it from other bad values."""


class PrivilegeError(RawpacerError, PermissionError):
    """Root / CAP_NET_RAW / CAP_NET_ADMIN is missing for an operation that needs it."""

    exit_code = 2


class SandboxError(RawpacerError):
    """A network namespace or link could not be created, entered or removed."""


class DeliveryError(RawpacerError):
    """Readers did not get what the writer sent (time-out, loss, corruption); says which and why."""


class ReaderDied(RawpacerError):
    """The reader process ended while a run still needed it."""


class Unavailable(RawpacerError):
    """The kernel here cannot run this (no AF_XDP, IPv6 disabled, no zero-copy driver, a queue another
    socket holds...): the message names it and the kernel's reason. A run over several writers
    reports it in that writer's row and goes on."""


UNAVAILABLE_ERRNOS = frozenset({errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT, errno.ENOPROTOOPT})
"""What the kernel answers when it lacks an address family, protocol or socket option altogether."""


def unavailable(exc: BaseException) -> Unavailable | None:
    """``exc`` as an Unavailable when it says the kernel lacks a feature (None otherwise)."""
    if isinstance(exc, Unavailable):
        return exc
    if isinstance(exc, OSError) and exc.errno in UNAVAILABLE_ERRNOS:
        return Unavailable(f"the kernel here does not support it ({exc.strerror})")
    return None


def require(condition: bool, message: str) -> None:
    """Raise UsageError(message) unless condition holds: the one-line check used at every entry point."""
    if not condition:
        raise UsageError(message)
