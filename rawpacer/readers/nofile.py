"""Process limits the readers need: enough file descriptors for up to 10,000 sockets."""

from __future__ import annotations

import resource

from rawpacer.errors import RawpacerError

SPARE_FDS = 64  # control socket, epoll, stdio and whatever the interpreter holds open


def ensure_nofile(sockets: int) -> int:
    """Raise RLIMIT_NOFILE (soft, and hard as root) to fit ``sockets`` more; return the new soft limit."""
    needed = sockets + SPARE_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new_hard = hard if hard == resource.RLIM_INFINITY or hard >= needed else needed
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, new_hard))
        except (ValueError, OSError) as exc:
            raise RawpacerError(
                f"{sockets} readers need {needed} open files but RLIMIT_NOFILE is {soft} (hard {hard}) "
                f"and cannot be raised ({exc}); raise it with `ulimit -n {needed}` or run as root"
            ) from None
        soft = needed
    return soft
