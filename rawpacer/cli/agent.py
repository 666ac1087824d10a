"""``rawpacer agent --stdio``: the receiving side of a two-host run, started by the controller over SSH."""

from __future__ import annotations

import argparse

from rawpacer.errors import require


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommand and its options."""
    p = sub.add_parser("agent", help="readers for a controller on another host (started over SSH; docs/two-hosts.md)")
    p.add_argument("--stdio", action="store_true", help="speak the agent protocol on stdin/stdout (the only mode)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve one controller on stdin/stdout until it says bye or goes away."""
    require(args.stdio, "agent needs --stdio: it is driven by a controller's messages on stdin (docs/two-hosts.md)")
    from rawpacer.remote import agent

    return agent.main()
