"""What several test modules share: the checkout's root and ways to run rawpacer as a user would."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rawpacer.bench.oploop import OpLoop
from rawpacer.cli import main
from rawpacer.messages import MessageSource
from rawpacer.readers import ReaderSet
from rawpacer.sandbox import Topology
from rawpacer.writers import Writer, WriterOptions, get, names
from rawpacer.writers.base import Knobs

ROOT = Path(__file__).resolve().parent.parent
"""The checkout: README.md, docs/, notebooks/ and the package live here."""


def child_pids() -> set[int]:
    """PIDs of this process's live children (zombies excluded)."""
    path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    with open(path) as handle:
        pids = {int(p) for p in handle.read().split()}
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().split(") ", 1)[1][0] != "Z":
                    alive.add(pid)
        except FileNotFoundError:
            pass
    return alive


# --- writers, as the registry lists them (adding a writer module adds it to every matrix) ---------

RAW_WRITERS = names(raw=True)
"""Every writer that builds its own headers."""
FAST_RAW_WRITERS = names(raw=True, slow=False)
"""Raw writers quick enough for large matrices (all but the benchtime-capped reference peer)."""
STANDARD_WRITERS = names(raw=False)
"""Writers that go through the kernel's UDP stack."""


def make_writer(topo: Topology, name: str, ports: Sequence[int], knobs: Knobs | None = None, **options: Any) -> Writer:
    """Writer ``name`` opened in the sandbox's writer namespace, aimed at ``ports`` on the readers."""
    with topo.enter("writer"):
        return get(name)(topo.target(ports), WriterOptions(**options), knobs)


def fanouts(
    topo: Topology, name: str, count: int, ops: int, size: int = 1500, knobs: Knobs | None = None, **options: Any
) -> tuple[int, int]:
    """``ops`` fan-outs of fresh crypto messages to ``count`` readers through the one op loop;
    return (delivered size, intact datagrams)."""
    with ReaderSet(topo, count, size) as readers:
        with make_writer(topo, name, readers.ports, knobs, message_size=size, **options) as writer:
            loop = OpLoop(writer, readers, MessageSource.make("crypto", size))
            outcomes = loop.fanouts(ops)
        assert all(o.sent == count for o in outcomes)
        return writer.delivered_size, sum(o.result.intact for o in outcomes)


def run_cli(argv: Sequence[str]) -> tuple[int, str]:
    """``rawpacer ARGV`` in this process, as ``rawpacer.cli.main`` runs it: (exit code, stderr).

    The CLI's process-wide settings (the SIGTERM handler, how warnings print) are put back after.
    """
    err = io.StringIO()
    handler, showwarning = signal.getsignal(signal.SIGTERM), warnings.showwarning
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(list(argv))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        signal.signal(signal.SIGTERM, handler)
        warnings.showwarning = showwarning
    return code, err.getvalue()
