"""Output files (--json, --plot, --pcap): refused before the run when they cannot be written, and a
finished benchmark never thrown away when writing fails after it (real filesystems: a directory,
an immutable file, a read-only mount, a full tmpfs, each in a private mount namespace)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, run_cli

from rawpacer import outputs
from rawpacer.errors import UsageError
from rawpacer.sandbox import pid_namespaces

QUICK = ["compare", "--writers", "udp-sendto", "--readers", "2", "--benchtime", "3x"]


def shell_compare(setup: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``compare`` after ``setup`` (shell) in a private mount namespace: mounts vanish with it."""
    command = " ".join([sys.executable, "-m", "rawpacer.cli", *QUICK, *args])
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"{setup} && exec {command}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def compare_on_tmpfs(folder: Path, size: str, then: str, json_path: str) -> subprocess.CompletedProcess[str]:
    """``compare --json json_path`` once a private tmpfs of ``size`` is mounted at ``folder`` (made
    here) and ``then`` (shell) has run on it."""
    folder.mkdir()
    return shell_compare(f"mount -t tmpfs -o size={size} tmpfs {folder} && {then}", "--json", json_path)


@pytest.mark.parametrize("option", ["--json", "--plot", "--pcap"])
def test_a_directory_is_refused_before_the_run(option, tmp_path):
    code, err = run_cli([*QUICK, "--writers", "packet-raw", option, str(tmp_path)])
    assert code == 2 and err.strip() == f"rawpacer: {option} {str(tmp_path)!r} is a directory; give a file name"


def test_a_missing_parent_is_refused(tmp_path):
    path = tmp_path / "no" / "such" / "r.json"
    code, err = run_cli([*QUICK, "--json", str(path)])
    assert code == 2 and "does not exist" in err and err.count("\n") == 1


def test_an_immutable_file_is_refused_before_anything_runs(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{}")
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        code, err = run_cli([*QUICK, "--json", str(path)])
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert code == 2 and "cannot be replaced: it is immutable (chattr +i)" in err
    assert path.read_text() == "{}"


def test_an_existing_file_on_a_read_only_mount_is_refused(tmp_path):
    folder = tmp_path / "ro"
    done = compare_on_tmpfs(
        folder, "64k", f"echo old > {folder}/r.json && mount -o remount,ro {folder}", f"{folder}/r.json"
    )
    assert done.returncode == 2, done.stderr
    assert "cannot be written" in done.stderr and "Read-only file system" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_full_disk_after_the_run_keeps_the_results_in_a_fallback_file(tmp_path):
    folder = tmp_path / "full"
    done = compare_on_tmpfs(
        folder, "4k", f"(dd if=/dev/zero of={folder}/fill bs=4k 2>/dev/null || true)", f"{folder}/r.json"
    )
    assert done.returncode == 1, done.stderr
    assert "udp-sendto" in done.stdout  # the table is printed all the same
    line = next(text for text in done.stderr.splitlines() if "could not write the JSON" in text)
    assert "No space left on device" in line and "Traceback" not in done.stderr
    saved = Path(line.rsplit("saved to ", 1)[1].removesuffix(" instead"))
    try:
        data = json.loads(saved.read_text())
        assert data["results"][0]["writer"] == "udp-sendto" and data["results"][0]["all_intact"]
    finally:
        saved.unlink()


def test_write_falls_back_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "fallback_dirs", lambda: [tmp_path])
    written = outputs.write(tmp_path / "missing-dir" / "x.json", lambda p: p.write_text("data"), suffix=".json")
    assert not written.ok and written.path.parent == tmp_path and written.path.read_text() == "data"
    assert "No such file or directory" in written.message("the JSON")


def test_check_leaves_nothing_behind(tmp_path):
    assert outputs.check("--json", tmp_path / "r.json") == tmp_path / "r.json"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError, match="is a directory"):
        outputs.check("--plot", tmp_path)


def test_refused_outputs_create_no_namespace(tmp_path):
    code, _ = run_cli([*QUICK, "--plot", str(tmp_path)])
    assert code == 2 and pid_namespaces() == []
