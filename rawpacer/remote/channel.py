"""The control channel to one remote host: OpenSSH's own client running ``rawpacer agent --stdio``.

``ssh -T -o BatchMode=yes [user@]host rawpacer agent --stdio``, not a Python SSH library: it is the
client users already trust, with their own config, keys, agent and known_hosts, and it adds no
dependency. BatchMode means it never prompts: a missing key or an unknown host key is an error.
``RAWPACER_SSH_COMMAND`` replaces ``ssh`` (like GIT_SSH_COMMAND: e.g. ``ssh -F my_config``);
``RAWPACER_REMOTE_COMMAND`` replaces the command run there (e.g. a venv's ``python -m rawpacer.cli``).
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import signal
import subprocess
import threading
from typing import Any

from rawpacer.errors import RawpacerError, ReaderDied, UsageError
from rawpacer.remote import wire
from rawpacer.remote.spec import Host

SSH_ENV = "RAWPACER_SSH_COMMAND"
COMMAND_ENV = "RAWPACER_REMOTE_COMMAND"
DEFAULT_COMMAND = "rawpacer agent --stdio"
SSH_OPTIONS = (
    "-T",
    "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=10",
    # a cut link ends the session within ~6 s instead of TCP's minutes (ssh_config(5))
    "-o", "ServerAliveInterval=2",
    "-o", "ServerAliveCountMax=3",
    # each op's verdict is one small packet on the hot path: no compression (zlib's time, per packet),
    # no DSCP class (a bulk class such as CS1 is "lower effort" on some networks, RFC 8622), and no
    # ControlMaster another session holds (its multiplexing process would be one more hop)
    "-o", "Compression=no",
    "-o", "IPQoS=none",
    "-o", "ControlPath=none",
)  # fmt: skip
HELLO_TIMEOUT_S = 30.0
"""SSH's connect and login, and the agent's start (Python, numpy) must fit in this."""
CLOSE_GRACE_S = 3.0
STDERR_LINES = 20


def ssh_argv(host: Host) -> list[str]:
    """The argv that starts the agent on ``host``."""
    ssh = shlex.split(os.environ.get(SSH_ENV, "") or "ssh")
    port = [] if host.port is None else ["-p", str(host.port)]
    command = os.environ.get(COMMAND_ENV, "") or DEFAULT_COMMAND
    return [*ssh, *SSH_OPTIONS, *port, host.destination, command]


def why_failed(host: Host, stderr: list[str], exit_code: int | None) -> str:
    """One line saying why the agent on ``host`` could not start or went away, from ssh's stderr."""
    text = "\n".join(stderr)
    last = next((line for line in reversed(stderr) if line.strip()), "")
    name = host.label
    if "Permission denied" in text or "Host key verification failed" in text or "No more authentication" in text:
        return f"ssh to {name} failed authentication ({last.strip()}); check your key and known_hosts for it"
    if "Connection refused" in text or "Connection timed out" in text or "No route to host" in text:
        return f"ssh to {name} could not connect ({last.strip()})"
    if "Could not resolve hostname" in text:
        return f"ssh to {name}: no such host ({last.strip()})"
    if "invalid choice: 'agent'" in text:
        return (
            f"rawpacer on {name} is too old (it has no agent command); install this release there: {wire.INSTALL_HINT}"
        )
    if "command not found" in text or re.search(r"No module named '?rawpacer", text) or "not found" in last:
        return f"rawpacer is not installed on {name}; install it there: {wire.INSTALL_HINT}"
    if exit_code is not None and exit_code < 0:
        return f"the agent on {name} was killed by {signal.Signals(-exit_code).name}"
    if exit_code == 255:
        return f"ssh to {name} failed ({last.strip() or 'connection lost'})"
    detail = last.strip() or (f"exit status {exit_code}" if exit_code is not None else "no answer")
    return f"the agent on {name} went away ({detail})"


class Channel:
    """One agent over one ssh process: framed requests and answers, each with a deadline."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._killed = False
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self.process = subprocess.Popen(
            ssh_argv(host),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C is the controller's to handle; the agent is stopped by bye/EOF
        )
        assert self.process.stdin is not None and self.process.stdout is not None and self.process.stderr is not None
        self._stdin = self.process.stdin.fileno()
        self._reader = threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True)
        self._reader.start()
        self.inbox = wire.Inbox(self.process.stdout.fileno(), wire.AGENT, f"the agent on {host.label}")
        self.closed = False
        self.peer: wire.Message | None = None
        try:
            self.put(*wire.hello(wire.CONTROLLER, "rawpacer controller"))
            self.peer = self.inbox.read(HELLO_TIMEOUT_S)
            wire.check_hello(self.peer, f"the agent on {host.label}")
        except wire.ProtocolError as exc:
            self.close()
            raise RawpacerError(self._explain(exc)) from None

    def _drain(self, pipe: Any) -> None:
        for raw in pipe:
            self.stderr.append(raw.decode(errors="replace").rstrip())

    def _explain(self, exc: Exception) -> str:
        """ssh's own words when it failed, else the protocol's."""
        try:
            code = self.process.wait(CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            code = None
        self._reader.join(0.5)
        if "mismatch" in str(exc) or "lacks" in str(exc) or self._killed:
            return str(exc)  # our own words: a refused handshake, or a silence we ended by killing ssh
        if code is None and not self.stderr:
            return f"{exc} ({self.host.label})"
        return why_failed(self.host, list(self.stderr), code)

    def put(self, *pieces: bytes | memoryview) -> None:
        """Write one encoded frame; a dead channel is ReaderDied in one line."""
        try:
            wire.write(self._stdin, list(pieces))
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise ReaderDied(self._explain(exc)) from None

    def send(self, kind: str, blob: bytes | memoryview = b"", **fields: Any) -> None:
        """Send one request (the answer is read with ``answer``)."""
        self.put(*wire.encode(wire.CONTROLLER, kind, blob, **fields))

    def answer(self, kind: str, timeout: float) -> wire.Message:
        """The next answer, which must be ``kind``; the agent's error as UsageError/RawpacerError, a
        silent or dead channel as ReaderDied, each one line naming the host."""
        try:
            msg = self.inbox.read(timeout)
        except wire.ProtocolError as exc:
            self.kill()
            raise ReaderDied(self._explain(exc)) from None
        if msg.type == "error":
            cls = UsageError if msg["usage"] else RawpacerError
            raise cls(f"{self.host.label}: {msg['text']}")
        if msg.type != kind:
            raise RawpacerError(f"the agent on {self.host.label} answered {msg.type!r} where {kind!r} was expected")
        return msg

    def request(
        self, kind: str, answer: str, timeout: float, blob: bytes | memoryview = b"", **fields: Any
    ) -> wire.Message:
        """One round trip."""
        self.send(kind, blob, **fields)
        return self.answer(answer, timeout)

    def kill(self) -> None:
        """End the ssh process at once (its session ends, and with it the agent's input)."""
        if self.process.poll() is None:
            self._killed = True
            self.process.kill()

    def close(self) -> None:
        """Say bye, give the agent ``CLOSE_GRACE_S`` to leave, then end ssh. Safe twice."""
        if self.closed:
            return
        self.closed = True
        if self.process.poll() is None:
            try:
                wire.write(self._stdin, wire.encode(wire.CONTROLLER, "bye"))
                self.process.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            try:
                self.process.wait(CLOSE_GRACE_S)
            except subprocess.TimeoutExpired:
                self.kill()
                self.process.wait()
        for pipe in (self.process.stdout, self.process.stdin):
            if pipe is not None and not pipe.closed:
                pipe.close()
