"""``rawpacer cleanup``: remove namespaces left by rawpacer runs that were killed (e.g. SIGKILL)."""

from __future__ import annotations

import argparse

from rawpacer.sandbox import remove_stale


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommand."""
    parser = sub.add_parser("cleanup", help="remove namespaces left by rawpacer runs that no longer run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Remove stale namespaces and say which."""
    removed = remove_stale()
    print(f"removed {len(removed)} stale namespace(s)" + (": " + ", ".join(removed) if removed else ""))
    return 0
