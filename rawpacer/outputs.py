"""Files a run writes (--json, --plot, --pcap, --report): checked before the run, written safely after.

A finished benchmark is never thrown away: ``check`` refuses, before anything runs, a path that is
a directory, has no parent directory, lies where nothing can be written, or names an existing file
that cannot be replaced (immutable, or on a read-only filesystem); ``write`` replaces the file
atomically and, if that still fails (disk full, the file changed meanwhile), writes to a fallback
file and says where.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rawpacer.errors import UsageError

FS_IOC_GETFLAGS = 0x80086601
"""ioctl reading an inode's attribute flags (``lsattr``), from linux/fs.h."""
FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20


def _flags(path: Path) -> int:
    """The file's attribute flags (0 where the filesystem has none)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        raw = fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("l", 0))
        return int(struct.unpack("l", raw)[0])
    except OSError:
        return 0
    finally:
        os.close(fd)


def _why_not_replaceable(path: Path) -> str | None:
    flags = _flags(path)
    if flags & FS_IMMUTABLE_FL:
        return "it is immutable (chattr +i)"
    if flags & FS_APPEND_FL:
        return "it is append-only (chattr +a)"
    return None


def check(option: str, path: str | os.PathLike[str]) -> Path:
    """The path, if a file can be written there and replace what is there; UsageError (one line,
    naming the option, the path and why) otherwise. Nothing is left behind by the check."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a directory; give a file name")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{option} {str(path)!r}: directory {str(parent)!r} does not exist")
    if target.exists() and (why := _why_not_replaceable(target)):
        raise UsageError(f"{option} {str(path)!r} cannot be replaced: {why}")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".probe")
    except OSError as exc:
        raise UsageError(f"{option} {str(path)!r} cannot be written in {str(parent)!r}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)
    return target


def check_dir(option: str, path: str | os.PathLike[str]) -> Path:
    """The path, if it is a directory files can be written in, or can be made as one (its parent is);
    UsageError (one line, naming the option, the path and why) otherwise. Nothing is left behind."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{option} {str(path)!r} is not a directory; give a directory for its files")
    folder = target if target.is_dir() else target.absolute().parent
    if not folder.is_dir():
        raise UsageError(f"{option} {str(path)!r}: directory {str(folder)!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".rawpacer.", suffix=".probe")
    except OSError as exc:
        raise UsageError(f"{option} {str(path)!r} cannot be written in {str(folder)!r}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)
    return target


@dataclass(frozen=True)
class Written:
    """Where a file ended up: the path asked for, or a fallback (with why the first failed)."""

    path: Path
    failed: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file is where the user asked for it."""
        return self.failed is None

    def message(self, what: str) -> str:
        """One line for stderr: where ``what`` was written, and why elsewhere if it was."""
        if self.ok:
            return f"wrote {self.path}"
        return f"could not write {what} ({self.failed}); it was saved to {self.path} instead"


def temporary(path: Path) -> Path:
    """The temporary file ``replace`` writes before renaming it to ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def final_path(tmp: Path) -> Path:
    """The file a ``temporary`` name becomes (the name itself when it is not one): how a writer that
    is handed the temporary file names what it links to, e.g. a report's graph."""
    suffix = f".{os.getpid()}.tmp"
    if tmp.name.startswith(".") and tmp.name.endswith(suffix):
        return tmp.with_name(tmp.name[1 : -len(suffix)])
    return tmp


def replace(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file beside ``path`` and rename it over, so no half-written file remains."""
    tmp = temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def fallback_dirs() -> list[Path]:
    """Where a file goes when its own place fails: the temporary directory, then the working one."""
    return [Path(tempfile.gettempdir()), Path.cwd()]


def write(path: str | os.PathLike[str], write_to: Callable[[Path], object], *, suffix: str) -> Written:
    """Write the file with ``write_to(path)``; on failure, to ``rawpacer-<time>-<pid><suffix>`` in a
    fallback directory. OSError only when every place failed (the caller then prints what it has)."""
    target = Path(path)
    try:
        replace(target, write_to)
        return Written(target)
    except OSError as exc:
        reason = f"{target}: {exc.strerror or exc}"
        last: OSError = exc
    name = f"rawpacer-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{suffix}"
    for folder in fallback_dirs():
        try:
            replace(folder / name, write_to)
            return Written(folder / name, reason)
        except OSError as exc:
            last = exc
    raise OSError(last.errno or errno.EIO, f"{reason}; no fallback place could be written either")
