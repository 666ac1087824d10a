"""The exceptions rawpacer raises on purpose; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class RawpacerError(Exception):
    """Base of every error rawpacer raises on purpose (message is meant for the user)."""

    exit_code = 1


class UsageError(RawpacerError, ValueError):
    """A value the user gave is not allowed; the message names the value and what is allowed."""

    exit_code = 2


class PrivilegeError(RawpacerError, PermissionError):
    """Root / CAP_NET_RAW / CAP_NET_ADMIN is missing for an operation that needs it."""

    exit_code = 2


class SandboxError(RawpacerError):
    """A network namespace or link could not be created, entered or removed."""


class DeliveryError(RawpacerError):
    """Readers did not get what the writer sent (time-out, loss, corruption); says which and why."""


class UnavailableError(RawpacerError):
    """A kernel feature a writer needs is missing, refused or held by someone else (AF_XDP, zero-copy,
    a queue another socket is bound to); the message names it and the kernel's reason."""


class ReaderDied(RawpacerError):
    """The reader process ended while a run still needed it."""


def require(condition: bool, message: str) -> None:
    """Raise UsageError(message) unless condition holds: the one-line check used at every entry point."""
    if not condition:
        raise UsageError(message)
