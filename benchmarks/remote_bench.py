"""Two hosts over SSH, measured: the seed's fan-out op with remote readers next to local ones, and
the clock offset with one clock and with an injected one (docs/two-hosts.md; issue 23's targets).

Run (root, from the checkout, as a module so that the test rig imports):
.venv/bin/python -m benchmarks.remote_bench [--rounds 3] [--readers 100] [--ops 1000]

The rig is the system tests' (tests/sshhosts.py, not part of the package): a controller namespace and a remote one with a
real sshd, joined by a veth link. Each round runs ``compare --writers udp-sendmmsg`` once with
``--remote`` and once on a local ``--topology veth`` pair (the order alternating), and prints the
ns/op of each and their ratio; then ``send`` eight times to read the clock offset and its bound,
four with the agent's clock as ours and four with 5 ms added (RAWPACER_TEST_CLOCK_OFFSET_NS).
On one VM both "hosts" share its CPUs: ssh, sshd, the agent and its reader process compete with
the controller, which two real hosts would not.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rawpacer.remote.clock import OFFSET_ENV
from tests.sshhosts import ROOT, Hosts

INJECTED_NS = 5_000_000


def ns_per_op(path: Path) -> float:
    """The first row's first sample's ns/op in a compare JSON."""
    return float(json.loads(path.read_text())["results"][0]["samples"][0]["ns_per_op"])


def main() -> int:
    """Rounds of remote vs local ops, then the clock offsets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--ops", type=int, default=1000)
    args = parser.parse_args()
    compare = ["compare", "--writers", "udp-sendmmsg", "--readers", str(args.readers), "--benchtime", f"{args.ops}x"]
    out = Path(tempfile.mkdtemp(prefix="remote-bench-"))
    with Hosts(remotes=1) as hosts:
        ratios = []
        for round_ in range(args.rounds):
            figures = {}
            for where in ("remote", "local") if round_ % 2 == 0 else ("local", "remote"):
                path = out / f"{where}.json"
                if where == "remote":
                    done = hosts.run(*compare, "--remote", hosts.addr(1), "--json", str(path))
                else:
                    done = subprocess.run(
                        [sys.executable, "-m", "rawpacer.cli", *compare, "--topology", "veth", "--json", str(path)],
                        capture_output=True, text=True, cwd=ROOT, check=False,
                    )  # fmt: skip
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    return 1
                figures[where] = ns_per_op(path)
            ratios.append(figures["remote"] / figures["local"])
            print(
                f"round {round_ + 1}: remote {figures['remote'] / 1e6:.3f} ms/op, local veth "
                f"{figures['local'] / 1e6:.3f} ms/op, ratio {ratios[-1]:.2f}"
            )
        print(f"median ratio {statistics.median(ratios):.2f}")
        for label, injected in (("one clock", 0), ("5 ms injected", INJECTED_NS)):
            for _ in range(4):
                done = hosts.run(
                    "send", "--writer", "udp-sendmmsg", "--remote", hosts.addr(1), "--readers", "10", "--ops", "1",
                    env=hosts.env({OFFSET_ENV: str(injected)}),
                )  # fmt: skip
                found = re.search(r"clock offset ([+-][\d.]+) µs ± ([\d.]+) µs", done.stdout)
                if found is None:
                    print(done.stderr, file=sys.stderr)
                    return 1
                error = float(found[1]) - injected / 1e3
                print(f"{label}: offset {found[1]} µs ± {found[2]} µs, error {error:+.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
