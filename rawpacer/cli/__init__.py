"""The ``rawpacer`` command: one subcommand per module in this package.

Each subcommand module defines ``add_parser(subparsers)`` and ``run(args) -> int``. Errors
rawpacer raises on purpose become one line on stderr and their exit code (2 for bad input);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import traceback
import warnings
from typing import NoReturn

from rawpacer.errors import RawpacerError
from rawpacer.sandbox import netns


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one line and exit code 2, without the usage block."""

    def error(self, message: str) -> NoReturn:
        """One line on stderr and exit code 2, instead of argparse's usage block."""
        print(f"rawpacer: {message}", file=sys.stderr)
        raise SystemExit(2)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Warnings reach the user at once, as one line like errors, without a source location."""
    print(f"rawpacer: warning: {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand module under ``rawpacer.cli`` registered."""
    parser = _Parser(prog="rawpacer", description="Raw-socket packet-crafting research toolkit.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    import rawpacer.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rawpacer`` script."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, netns.interrupt)  # Ctrl-C's clean-up for a kill too
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args) or 0)
    except RawpacerError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"rawpacer: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rawpacer: interrupted; cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
