"""Named network namespaces: create, enter (this thread), remove, and find leftovers.

Names are ``rawpacer-<pid>-<n>-<role>``, so concurrent runs never collide and a namespace
whose creating process is gone can be recognised and removed (``remove_stale``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import os
import re
import secrets
import signal
import threading
from collections.abc import Iterator
from typing import Any

from rawpacer.errors import SandboxError
from rawpacer.kernel import caps

PREFIX = "rawpacer-"
RUN_DIR = "/run/netns"
_NAME = re.compile(rf"^{PREFIX}(\d+)-")
_counter = itertools.count()
_guarding = 0
"""Sandboxes alive in the main thread under ``terminate_as_interrupt``'s handler."""
CLONE_NEWNET = 0x40000000
"""setns(2)'s nstype for a network namespace (linux/sched.h)."""


def new_run_id() -> str:
    """A per-run stem unique on this machine: the pid, a counter and a random token."""
    return f"{PREFIX}{os.getpid()}-{next(_counter)}{secrets.token_hex(2)}"


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while namespaces are made or removed, then act on them.

    A Ctrl-C landing inside a namespace's creation would otherwise leave it made but unrecorded.
    Only the main thread can install handlers; elsewhere the body runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[signal.Signals] = []
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signal.Signals(signum))) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), caught[0])


def interrupt(signum: int, frame: object) -> None:
    """A signal handler: the signal raises KeyboardInterrupt, so ``with`` blocks unwind as on Ctrl-C."""
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the body runs, SIGTERM unwinds like Ctrl-C when nothing else handles it: its default
    action ends the process at once, before any namespace could be removed. A handler someone
    installed is kept. Only the main thread can install handlers; elsewhere the body runs as it is."""
    global _guarding
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _guarding == 0:
        if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
            yield
            return
        signal.signal(signal.SIGTERM, interrupt)
    _guarding += 1  # sandboxes may overlap in any order: the last one out puts the default back
    try:
        yield
    finally:
        _guarding -= 1
        if _guarding == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def create(name: str) -> None:
    """Create the named namespace (like ``ip netns add``)."""
    caps.require("creating network namespaces", caps.SANDBOX)
    try:
        _pyroute2().create(name)
    except OSError as exc:
        raise SandboxError(f"cannot create network namespace {name!r}: {exc}") from exc


def remove(name: str) -> None:
    """Remove the named namespace if it exists (its links go with it)."""
    if os.path.exists(os.path.join(RUN_DIR, name)):
        _pyroute2().remove(name)


def _pyroute2() -> Any:
    """pyroute2's netns module, loaded when a namespace is made or removed (not by the reader
    process, which only enters one: see ``_setns``)."""
    from pyroute2 import netns

    return netns


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    """Move this thread into the network namespace ``fd`` refers to (setns(2), CLONE_NEWNET)."""
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body in namespace ``name`` (this thread only), then return to where it was.

    Sockets created inside stay in that namespace after the body ends.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(RUN_DIR, name), os.O_RDONLY)
    except FileNotFoundError:
        os.close(home)
        raise SandboxError(f"network namespace {name!r} does not exist") from None
    try:
        _setns(target)
        yield
    finally:
        os.close(target)
        _setns(home)
        os.close(home)


def enter_namespace(name: str) -> None:
    """Move the calling process (a forked child, single-threaded) into ``name`` for good."""
    fd = os.open(os.path.join(RUN_DIR, name), os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


def owned(pid: int | None = None) -> list[str]:
    """Namespaces rawpacer made that exist now (only those of ``pid`` when given)."""
    try:
        names = os.listdir(RUN_DIR)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        match = _NAME.match(name)
        if match and (pid is None or int(match.group(1)) == pid):
            found.append(name)
    return sorted(found)


def current_is_owned() -> bool:
    """True when this thread is inside a namespace rawpacer created (checked by inode, not name)."""
    here = os.stat("/proc/thread-self/ns/net")
    for name in owned():
        try:
            st = os.stat(os.path.join(RUN_DIR, name))
        except FileNotFoundError:
            continue
        if (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino):
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Remove namespaces left by rawpacer processes that no longer run; return their names."""
    stale = [n for n in owned() if (match := _NAME.match(n)) and not _alive(int(match.group(1)))]
    for name in stale:
        remove(name)
    return stale
