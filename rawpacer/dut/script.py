"""A user's own DUT setup (``--dut-setup FILE``, or a list of lines from Python): one shell command a
line, run with ``sh -c`` inside the DUT's namespace after the profiles, so pipes and quoting work.

Blank lines and lines whose first non-blank character is ``#`` are skipped. ``{in}`` and ``{out}``
stand for the DUT's interface facing the writer and the one facing the readers; they are replaced,
shell-quoted, by ``render`` (plain replacement, so other braces, as in awk's, stay as they are).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

from rawpacer.errors import UsageError

PLACEHOLDERS = ("{in}", "{out}")


def _commands(lines: Iterable[str]) -> tuple[str, ...]:
    """The lines that are commands: stripped, neither blank nor a comment."""
    return tuple(text for text in (line.strip() for line in lines) if text and not text.startswith("#"))


def read_script(path: str) -> tuple[str, ...]:
    """The commands of the setup script at ``path``; UsageError (one line) when it cannot be read,
    is a directory, is not UTF-8 text, or has no command in it."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except IsADirectoryError:
        raise UsageError(f"DUT setup script {path!r} is a directory; give a file with one command a line") from None
    except OSError as exc:
        raise UsageError(f"DUT setup script {path!r} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"DUT setup script {path!r} is not UTF-8 text; give one shell command a line") from None
    commands = _commands(text.splitlines())
    if not commands:
        raise UsageError(f"DUT setup script {path!r} has no command (only blank lines and # comments)")
    return commands


def script_lines(lines: Sequence[str]) -> tuple[str, ...]:
    """The commands among ``lines`` given from Python (an item may hold several lines), read as a
    script file is; UsageError when an item is not text or there is no command at all."""
    if isinstance(lines, str):
        raise UsageError("DUT setup lines must be a list of commands, not one string; wrap it in a list")
    for item in lines:
        if not isinstance(item, str):
            raise UsageError(f"DUT setup line {item!r} is not text; give shell commands as strings")
    commands = _commands(text for item in lines for text in item.splitlines())
    if not commands:
        raise UsageError("DUT setup lines hold no command (only blank lines and # comments)")
    return commands


def render(line: str, in_if: str, out_if: str) -> str:
    """``line`` with ``{in}`` and ``{out}`` replaced by the DUT's interface names, shell-quoted."""
    return line.replace("{in}", shlex.quote(in_if)).replace("{out}", shlex.quote(out_if))
