"""Set the device under test up: every profile's commands, then every script line, run inside its
namespace, stopping at the first that fails with a one-line DutSetupError naming it.

Each command runs as a child of this thread while the thread is inside the DUT's namespace
(``netns.entered``): a child forked from a thread lives in that thread's network namespace, so tc
and nft talk netlink to the DUT's kernel objects. This beats ``ip netns exec``, which needs the
``ip`` binary and makes a mount namespace per command, and it reuses the sandbox's own check that
the namespace exists. (Like any process here, the child sees the host's /sys; /proc/sys/net and
/proc/net follow its namespace.)
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from rawpacer.dut.profiles import Profile
from rawpacer.dut.script import render
from rawpacer.errors import DutSetupError
from rawpacer.limits import DUT_COMMAND_TIMEOUT_S
from rawpacer.sandbox import netns

PACKAGES = {"nft": "nftables", "tc": "iproute2", "ip": "iproute2", "sh": "dash"}
"""The Debian package that installs each binary a profile runs."""


@dataclass(frozen=True)
class Step:
    """One line to run: as reported, as executed (argv), and its stdin."""

    line: str
    argv: tuple[str, ...]
    stdin: str | None = None


def steps(in_if: str, out_if: str, profiles: Sequence[Profile], script_lines: Sequence[str]) -> list[Step]:
    """What ``apply`` runs, in order: the profiles' commands (argv), then the script lines (``sh -c``)."""
    plan = [Step(cmd.line, cmd.argv, cmd.stdin) for profile in profiles for cmd in profile.commands(in_if, out_if)]
    for line in script_lines:
        shell_line = render(line, in_if, out_if)
        plan.append(Step(shell_line, ("sh", "-c", shell_line)))
    return plan


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def run_step(number: int, step: Step) -> None:
    """Run one step in this thread's namespace; DutSetupError (one line) when it fails."""
    where = f"DUT setup line {number} ({step.line})"
    try:
        done = subprocess.run(
            step.argv,
            input=step.stdin,
            capture_output=True,
            text=True,
            timeout=DUT_COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        binary = step.argv[0]
        package = PACKAGES.get(binary, "that provides it")
        raise DutSetupError(
            f"{where} needs {binary}, which is not installed; install the Debian package {package}"
        ) from None
    except subprocess.TimeoutExpired:
        raise DutSetupError(f"{where} did not finish in {DUT_COMMAND_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        said = _first_line(done.stderr) or _first_line(done.stdout) or "nothing on stderr"
        raise DutSetupError(f"{where} failed with exit status {done.returncode}: {said}")


def apply(ns: str, in_if: str, out_if: str, profiles: Sequence[Profile], script_lines: Sequence[str]) -> list[str]:
    """Run every profile's commands, then every script line, inside namespace ``ns``; the lines run.

    ``in_if`` faces the writer and ``out_if`` the readers. The first line that fails raises
    DutSetupError naming its number (counted over everything run, profiles first), the line and
    the first line of its stderr; the lines before it stay applied (the namespace goes with the sandbox).
    """
    plan = steps(in_if, out_if, profiles, script_lines)
    with netns.entered(ns):
        for number, step in enumerate(plan, 1):
            run_step(number, step)
    return [step.line for step in plan]
