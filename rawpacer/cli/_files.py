"""Writing a finished run's files: one line on stderr each, and a fallback place when its own fails."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from rawpacer import outputs


def save(what: str, path: str, suffix: str, write_to: Callable[[Path], object]) -> bool:
    """Write ``what`` with ``write_to`` to ``path`` (or a fallback, said in one line); False when it
    is not where the user asked for it."""
    try:
        written = outputs.write(path, write_to, suffix=suffix)
    except OSError as exc:
        print(f"rawpacer: could not write {what} anywhere: {exc.strerror or exc}", file=sys.stderr)
        return False
    print(("" if written.ok else "rawpacer: ") + written.message(what), file=sys.stderr)
    return written.ok


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


def save_hlogs(directory: str, files: dict[str, str]) -> bool:
    """Write each HdrHistogram log (name -> text) into ``directory`` (made if only its parent exists,
    as ``outputs.check_dir`` allowed); False when any is not where the user asked for it."""
    folder = Path(directory)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        print(f"rawpacer: could not make {folder}: {exc.strerror or exc}", file=sys.stderr)
    ok = True
    for name, text in files.items():
        ok &= save(f"the histogram log {name}", str(folder / name), ".hlog", functools.partial(_write_text, text=text))
    return ok


def did_not_run(failed: Iterable[str], named: Iterable[str]) -> bool:
    """Say which writers the user named did not run (refused, unavailable, failed); True if any."""
    chosen = set(named)
    missing = list(dict.fromkeys(name for name in failed if name in chosen))
    if missing:
        print(f"rawpacer: {', '.join(missing)} did not run (see the table)", file=sys.stderr)
    return bool(missing)
