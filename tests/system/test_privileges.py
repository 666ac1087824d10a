"""Privileges: without root or with CAP_NET_ADMIN/CAP_NET_RAW dropped, every entry point says in one
line what is missing and what to do (exit 2), before creating anything; the header builders need none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, cli

from rawpacer.sandbox import owned

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
NO_NET_CAPS = ["setpriv", "--bounding-set=-net_raw,-net_admin", "--inh-caps=-net_raw,-net_admin"]


@pytest.fixture(scope="module")
def as_nobody():
    """Skip (saying why) only where nobody cannot even import rawpacer from this checkout."""
    probe = subprocess.run(
        [*NOBODY, sys.executable, "-c", "import rawpacer.cli"],
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd="/",
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("this checkout or its interpreter is not readable by the user nobody")


def test_not_root_gets_one_line_saying_how_to_run(as_nobody):
    done = cli("compare", "--readers", "2", "--writers", "udp-sendto", prefix=NOBODY, cwd=Path("/"))
    assert done.returncode == 2, done.stderr
    assert "sudo ./sudo-run.sh" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_not_root_doctor_says_how_to_run(as_nobody):
    done = cli("doctor", prefix=NOBODY, cwd=Path("/"))
    assert done.returncode == 2 and "sudo ./sudo-run.sh doctor" in done.stderr and "Traceback" not in done.stderr


def test_headers_build_and_parse_without_privileges(as_nobody):
    code = (
        "import os; from rawpacer import headers; assert os.geteuid() == 65534; "
        "f = headers.build_frame(5001, b'x' * 100, src_ip='198.18.0.1', dst_ip='198.18.0.2'); "
        "p = headers.parse_frame(f); assert p.payload == b'x' * 100 and p.udp_checksum_ok; print('ok')"
    )
    done = subprocess.run(
        [*NOBODY, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd="/",
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "--readers", "2", "--writers", "udp-sendto"],
        ["compare", "--readers", "2"],
        ["send", "--readers", "2"],
        ["doctor"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_dropped_network_capabilities_are_named_in_one_line(args):
    before = set(owned())
    done = cli(*args, prefix=NO_NET_CAPS)
    lines = [line for line in done.stderr.strip().splitlines()]
    assert done.returncode == 2, done.stderr
    assert lines[-1].startswith("rawpacer: ") and "CAP_NET_ADMIN" in lines[-1] and "--cap-add" in lines[-1]
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert set(owned()) == before


@pytest.mark.parametrize(
    ("call", "what"),
    [
        ("from rawpacer.bench import compare; compare(writers='udp-sendto', readers=2)", "a comparison"),
        ("from rawpacer.sandbox import Sandbox; Sandbox('veth').__enter__()", "a sandbox"),
    ],
)
def test_the_python_entry_points_check_capabilities_too(call, what):
    code = (
        "from rawpacer.errors import PrivilegeError\n"
        f"try:\n    {call}\n"
        "except PrivilegeError as exc:\n    print('refused:', exc)\n"
    )
    done = subprocess.run(
        [*NO_NET_CAPS, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd="/",
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
        check=False,
    )
    assert done.stdout.startswith(f"refused: {what} needs CAP_NET_ADMIN"), done.stderr
