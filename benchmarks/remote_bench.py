"""Two hosts over SSH, measured: the seed's fan-out op with remote readers next to local ones, and
the clock offset with one clock and with an injected one (docs/two-hosts.md; issue 23's targets).

Run (root, from the checkout, as a module so that the test rig imports):
.venv/bin/python -m benchmarks.remote_bench [--rounds 3] [--readers 100] [--ops 1000]
            .venv/bin/python -m benchmarks.remote_bench --breakdown 2000   (where one op's time goes)

The rig is the system tests' (tests/sshhosts.py, not part of the package): a controller namespace and a remote one with a
real sshd, joined by a veth link. Each round runs ``compare --writers udp-sendmmsg`` once with
``--remote`` and once on a local ``--topology veth`` pair (the order alternating), and prints the
ns/op of each and their ratio; then ``send`` eight times to read the clock offset and its bound,
four with the agent's clock as ours and four with 5 ms added (RAWPACER_TEST_CLOCK_OFFSET_NS).
``--breakdown N`` times N ops in this process instead, in alternating blocks of local (a veth
sandbox) and remote ops, each cut into segments: the fill, arming, the writer's send, the wait for
the verdict, and how long after the last reader's check the verdict reached the op loop (the
readers' clock is the same CLOCK_MONOTONIC here, both "hosts" being one VM).
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
import time
from collections import defaultdict
from pathlib import Path

from rawpacer.messages import CryptoSource
from rawpacer.readers import ReaderSet
from rawpacer.remote.clock import OFFSET_ENV
from rawpacer.remote.readerset import AnyReaders, RemoteReaderSet
from rawpacer.remote.route import target
from rawpacer.remote.spec import parse_hosts
from rawpacer.sandbox import Sandbox
from rawpacer.sandbox.netns import entered
from rawpacer.writers import WriterOptions, get
from rawpacer.writers.base import Writer
from tests.sshhosts import ROOT, Hosts

INJECTED_NS = 5_000_000
SIZE = 1500
SEGMENTS = ("fill", "arm", "send", "wait", "verdict", "op")
"""verdict: from the later of the send's end and the last reader's check to the op loop holding the result."""


def ns_per_op(path: Path) -> float:
    """The first row's first sample's ns/op in a compare JSON."""
    return float(json.loads(path.read_text())["results"][0]["samples"][0]["ns_per_op"])


def one_op(readers: AnyReaders, writer: Writer, source: CryptoSource) -> dict[str, int]:
    """One fan-out op (the op loop's steps), its segments in ns."""
    t0 = time.monotonic_ns()
    source.fill(readers.buffer)
    t1 = time.monotonic_ns()
    readers.begin(writer.delivered_size)
    t2 = time.monotonic_ns()
    sent = writer.send(readers.messages)
    t3 = time.monotonic_ns()
    result = readers.wait(sent, strict=True, silence=0.05)
    t4 = time.monotonic_ns()
    verdict = t4 - max(t3, result.reader_last_ns)
    return {"fill": t1 - t0, "arm": t2 - t1, "send": t3 - t2, "wait": t4 - t3, "verdict": verdict, "op": t4 - t0}


def breakdown(ops: int, readers: int, rounds: int) -> None:
    """``ops`` ops each way in ``rounds`` alternating blocks, in this process; medians per segment (µs)."""
    samples: dict[str, dict[str, list[int]]] = {"local": defaultdict(list), "remote": defaultdict(list)}
    source = CryptoSource(SIZE)
    options = WriterOptions(message_size=SIZE)
    with Hosts(remotes=1) as hosts, Sandbox("veth", mtu=1500) as topo, ReaderSet(topo, readers, SIZE) as local:
        import os

        os.environ.update(hosts.env())
        with entered(hosts.controller):
            remote = RemoteReaderSet(parse_hosts(hosts.addr(1)), readers, SIZE)
            share = remote.shares[0]
            far = get("udp-sendmmsg")(target(share.addr, share.ports, None, None, 4), options)
        with topo.enter("writer"):
            near = get("udp-sendmmsg")(topo.target(local.ports), options)
        pairs: dict[str, tuple[AnyReaders, Writer]] = {"local": (local, near), "remote": (remote, far)}
        try:
            remote.attach(source)
            for round_ in range(rounds):
                for where in ("local", "remote") if round_ % 2 == 0 else ("remote", "local"):
                    rs, writer = pairs[where]
                    for _ in range(ops // rounds):
                        for key, value in one_op(rs, writer, source).items():
                            samples[where][key].append(value)
                    if rs is remote:  # end the op the agent prearmed: its reader must not spin through the local block
                        remote.settle()
        finally:
            near.close()
            far.close()
            remote.close()
    print("| segment (median, µs) | local veth | remote over ssh |")
    print("| --- | ---: | ---: |")
    for key in SEGMENTS:
        cells = [f"{statistics.median(samples[w][key]) / 1e3:.0f}" for w in ("local", "remote")]
        print(f"| {key} | {' | '.join(cells)} |")
    ratio = statistics.median(samples["remote"]["op"]) / statistics.median(samples["local"]["op"])
    print(f"remote/local op: {ratio:.2f}x")


def main() -> int:
    """Rounds of remote vs local ops, then the clock offsets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--breakdown", type=int, metavar="N", help="time N ops each way in segments, in this process")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.breakdown, args.readers, max(2, args.breakdown // 200))
        return 0
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
