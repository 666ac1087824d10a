"""Hosts for the two-host tests: namespaces joined by veth links, each remote one running a real
OpenSSH server (``sshd -D -f CONFIG``) with a host key and a client key made for the run.

``Hosts(remotes=2)`` makes ``c`` (the controller) and ``r1``, ``r2``, each remote on its own
link ``198.18.<i>.1`` (c) <-> ``198.18.<i>.2`` (ri); ``env`` is what the controller needs:
``RAWPACER_SSH_COMMAND`` pointing ssh at a config with the run's key and known_hosts (strict host
key checking), ``RAWPACER_REMOTE_COMMAND`` running the agent with this checkout's venv python.
Everything (sshd processes, namespaces, the temporary directory) goes on every exit path.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SCRIPT = Path(sys.executable).with_name("rawpacer")
"""The venv's ``rawpacer`` script, as installed on a remote (its imports follow PYTHONPATH)."""
AGENT_PATTERN = "bin/rawpacer agent --stdio"
"""What this rig's agents' command lines hold (and only theirs and the ssh clients running them)."""
PRIVSEP_DIR = Path("/run/sshd")
"""sshd's privilege-separation directory (Debian's service makes it at start; here the rig does)."""


def sh(*argv: str) -> str:
    """Run a command, fail loudly; its stdout."""
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def agent_command(env: dict[str, str] | None = None) -> str:
    """The remote command: this checkout's agent with the venv's python, ``env`` set for it."""
    assignments = [f"{k}={shlex.quote(v)}" for k, v in {"PYTHONPATH": str(ROOT), **(env or {})}.items()]
    return " ".join(["env", *assignments, shlex.quote(sys.executable), shlex.quote(str(SCRIPT)), "agent", "--stdio"])


class Hosts:
    """Context manager: the controller namespace and ``remotes`` remote hosts with sshd each."""

    def __init__(self, remotes: int = 1) -> None:
        self.tag = f"rpssh{os.getpid()}"
        self.remotes = remotes
        self.namespaces: list[str] = []
        self.sshd: list[subprocess.Popen[bytes]] = []
        self.dir = Path(tempfile.mkdtemp(prefix="rawpacer-ssh-"))
        self.controller = f"{self.tag}c"

    def ns(self, i: int) -> str:
        """Namespace of remote ``i`` (1-based)."""
        return f"{self.tag}r{i}"

    @staticmethod
    def addr(i: int) -> str:
        """Remote ``i``'s address."""
        return f"198.18.{i}.2"

    def __enter__(self) -> Self:
        try:
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _build(self) -> None:
        sh("ip", "netns", "add", self.controller)
        self.namespaces.append(self.controller)
        sh("ip", "-n", self.controller, "link", "set", "lo", "up")
        for key in ("host_key", "client_key"):
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / key))
        (self.dir / "authorized_keys").write_text((self.dir / "client_key.pub").read_text())
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        host_pub = (self.dir / "host_key.pub").read_text().split()
        known = []
        for i in range(1, self.remotes + 1):
            remote = self.ns(i)
            sh("ip", "netns", "add", remote)
            self.namespaces.append(remote)
            sh("ip", "-n", remote, "link", "set", "lo", "up")
            here, there = f"{self.tag}c{i}", f"{self.tag}r{i}"
            sh("ip", "-n", self.controller, "link", "add", here, "type", "veth", "peer", "name", there, "netns", remote)
            sh("ip", "-n", self.controller, "addr", "add", f"198.18.{i}.1/24", "dev", here)
            sh("ip", "-n", remote, "addr", "add", f"{self.addr(i)}/24", "dev", there)
            sh("ip", "-n", self.controller, "link", "set", here, "up")
            sh("ip", "-n", remote, "link", "set", there, "up")
            known.append(f"{self.addr(i)} {host_pub[0]} {host_pub[1]}")
            self._start_sshd(i)
        (self.dir / "known_hosts").write_text("\n".join(known) + "\n")
        (self.dir / "ssh_config").write_text(
            "Host *\n  User root\n"
            f"  IdentityFile {self.dir / 'client_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.dir / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  LogLevel ERROR\n"
        )

    def _start_sshd(self, i: int) -> None:
        config = self.dir / f"sshd_config{i}"
        config.write_text(
            f"ListenAddress {self.addr(i)}\nPort 22\nHostKey {self.dir / 'host_key'}\n"
            f"PidFile {self.dir / f'sshd{i}.pid'}\nAuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
            "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nLogLevel ERROR\n"
            # a cut link ends the session (and the agent's input) within ~3 s (sshd_config(5))
            "ClientAliveInterval 1\nClientAliveCountMax 3\n"
        )
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(i), SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.sshd.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"sshd did not start: {process.stderr.read().decode() if process.stderr else ''}")
            probe = subprocess.run(
                ["ip", "netns", "exec", self.controller, "bash", "-c", f"echo > /dev/tcp/{self.addr(i)}/22"],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("sshd did not listen within 10 s")

    def env(self, agent_env: dict[str, str] | None = None) -> dict[str, str]:
        """The controller's environment: ssh with the run's config, the checkout's agent over there."""
        return dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            RAWPACER_SSH_COMMAND=f"ssh -F {self.dir / 'ssh_config'}",
            RAWPACER_REMOTE_COMMAND=agent_command(agent_env),
        )

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``rawpacer ARGS`` in the controller namespace, to the end."""
        return subprocess.run(
            ["ip", "netns", "exec", self.controller, sys.executable, "-m", "rawpacer.cli", *args],
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )

    def agents(self) -> list[int]:
        """PIDs of this rig's agent processes still running (and of ssh clients running one), in its
        namespaces only: other runs on the machine, and their agents, are not this rig's to count or kill."""
        out = subprocess.run(["pgrep", "-f", AGENT_PATTERN], capture_output=True, text=True, check=False)
        mine = set()
        for name in self.namespaces:
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout
            mine.update(int(p) for p in pids.split())
        return [int(p) for p in out.stdout.split() if int(p) in mine]

    def __exit__(self, *exc: object) -> None:
        for process in self.sshd:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "pids", name], capture_output=True, check=False)
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout
            for pid in pids.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.namespaces = []
        shutil.rmtree(self.dir, ignore_errors=True)
