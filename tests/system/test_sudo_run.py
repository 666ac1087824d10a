"""sudo-run.sh: the README's entry point passes words to the CLI and refuses clearly without root."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

import pytest
from helpers import ROOT

SCRIPT = ROOT / "sudo-run.sh"


def _run(*args: str, user: str | None = None, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path or os.environ["PATH"])
    cmd = [str(SCRIPT), *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_as_root_other_words_reach_the_rawpacer_cli():
    done = _run("cleanup")
    assert done.returncode == 0, done.stderr
    assert "stale namespace" in done.stdout


def test_unknown_subcommand_is_exit_2_without_traceback():
    done = _run("frobnicate")
    assert done.returncode == 2
    assert "frobnicate" in done.stderr and "Traceback" not in done.stderr


def test_no_word_prints_usage_and_exit_2():
    done = _run()
    assert done.returncode == 2 and "usage: sudo ./sudo-run.sh" in done.stderr


@pytest.mark.skipif(not os.access(SCRIPT, os.X_OK), reason="script not executable")
def test_not_root_and_no_sudo_says_how_to_run():
    nobody = str(pwd.getpwnam("nobody").pw_uid)
    bare_path = "/usr/bin:/bin"
    if shutil.which("sudo", path=bare_path):
        pytest.skip("sudo is installed here; this checks the no-sudo path")
    probe = subprocess.run(["setpriv", f"--reuid={nobody}", "test", "-x", str(SCRIPT)], check=False)
    if probe.returncode != 0:
        pytest.skip("the checkout is not reachable by nobody")
    done = _run("compare", user=nobody, path=bare_path)
    assert done.returncode == 2
    assert "needs root" in done.stderr and "run it as root" in done.stderr
