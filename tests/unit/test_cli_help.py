"""``--help`` of the command and of every subcommand the parser knows: exit 0 and a usage line
(argparse %-formats help strings, so a bare ``%`` in one is a traceback, not help)."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from rawpacer.cli import build_parser, main


def subcommands() -> list[str]:
    """The subcommands as the parser registers them (one per module in rawpacer.cli)."""
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(action.choices)


def test_the_parser_knows_the_documented_subcommands():
    assert {"compare", "send", "rfc2544", "doctor", "cleanup"} <= set(subcommands())


@pytest.mark.parametrize("argv", [[], *([name] for name in subcommands())], ids=lambda argv: " ".join(argv) or "-")
def test_help_exits_0_with_a_usage_line(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    assert out.getvalue().startswith(f"usage: {' '.join(['rawpacer', *argv])}")
