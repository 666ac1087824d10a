"""Starting a reader process safely whatever threads the parent runs: fork+exec of a small entry point.

``fork()`` copies only the calling thread, and with it every lock another thread held at that
instant (rich's progress-bar refresh, Jupyter's kernel threads, numpy's OpenBLAS pool): a child
that then runs Python can block on one for ever (POSIX fork(2): after a fork in a multi-threaded
process the child may call only async-signal-safe functions; CPython 3.12 warns on it). So the
reader process is a fresh interpreter started with ``posix_spawn`` (an exec: nothing of the
parent's memory or locks comes along), which imports the entry point and calls it with the
control socket and any other descriptors by number and its arguments as plain values. It costs
an interpreter start and the reader process's imports, once per reader set: ~0.1 s here against
~20 ms for a fork, because that process imports no numpy, pyroute2 or rich (the packages it
touches import their public names on first use, ``rawpacer.lazy``; docs/readers.md).
"""

from __future__ import annotations

import importlib
import marshal
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
"""Put first on the spawned interpreter's path, so it imports this very rawpacer."""
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1"}
"""A spawned process does no linear algebra: should one ever import numpy (none does now: the readers
and a replay's recorder are lean), numpy then starts no thread pool there."""


def start(entry: str, fds: Sequence[int], args: tuple[Any, ...]) -> int:
    """Start a process running ``entry`` (``"module:function"``) as ``function(*fds, *args)`` and
    return its pid. ``fds`` stay open in it under the same numbers; ``args`` must be marshal-able."""
    argv = [sys.executable, "-c", "from rawpacer.readers.spawn import main; main()", entry, marshal.dumps(args).hex()]
    argv += [str(fd) for fd in fds]
    env = dict(os.environ) | CHILD_ENV
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
    # posix_spawn's dup2 onto the same number clears close-on-exec there only (glibc 2.29+, POSIX 2024)
    actions = [(os.POSIX_SPAWN_DUP2, fd, fd) for fd in fds]
    return os.posix_spawn(sys.executable, argv, env, file_actions=actions)


def _run(entry: str, fds: Sequence[int], args: tuple[Any, ...]) -> NoReturn:
    """Call the entry point in this new process; whatever happens, the process ends here."""
    try:
        module, name = entry.split(":")
        function: Callable[..., NoReturn] = getattr(importlib.import_module(module), name)
        function(*fds, *args)
    except BaseException:  # noqa: BLE001 - the entry could not even start: say why on stderr, then end
        traceback.print_exc()
    os._exit(1)  # the entry point ends the process itself; reached only if it could not be called


def main() -> NoReturn:
    """The spawned interpreter's entry: ``argv`` is the entry point, its hex-marshalled arguments, the fds."""
    entry, args, *fds = sys.argv[1:]
    _run(entry, [int(fd) for fd in fds], marshal.loads(bytes.fromhex(args)))
