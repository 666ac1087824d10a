"""The capabilities rawpacer needs, checked before anything is created (capabilities(7)).

Namespaces need CAP_SYS_ADMIN (unshare, the bind mount under /run/netns) and CAP_NET_ADMIN (links,
addresses, sysctls, qdiscs); raw sockets need CAP_NET_RAW. Root normally has all three, but a
container may drop them: then the error says which is missing and what to do, in one line.
"""

from __future__ import annotations

import os

from rawpacer.errors import PrivilegeError

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_SYS_ADMIN = 21
NAMES = {CAP_NET_ADMIN: "CAP_NET_ADMIN", CAP_NET_RAW: "CAP_NET_RAW", CAP_SYS_ADMIN: "CAP_SYS_ADMIN"}

SANDBOX = (CAP_SYS_ADMIN, CAP_NET_ADMIN)
"""What making, entering and removing rawpacer's namespaces takes."""
RAW = (CAP_NET_RAW,)
"""What a raw writer's socket (AF_PACKET, SOCK_RAW, AF_XDP) takes."""
EVERYTHING = (*SANDBOX, *RAW)
"""What a benchmark run takes: its sandbox, raw writers and readers."""


def effective() -> int:
    """This thread's effective capability set (``CapEff`` of /proc/thread-self/status) as a bit mask."""
    with open("/proc/thread-self/status") as handle:
        line = next(row for row in handle if row.startswith("CapEff:"))
    return int(line.split()[1], 16)


def have(capability: int) -> bool:
    """True when the effective set holds ``capability``."""
    return bool(effective() >> capability & 1)


def missing(capabilities: tuple[int, ...]) -> list[str]:
    """The names of those of ``capabilities`` this thread lacks, in order."""
    mask = effective()
    return [NAMES[c] for c in capabilities if not mask >> c & 1]


def require(what: str, capabilities: tuple[int, ...], command: str = "...") -> None:
    """PrivilegeError (exit 2, one line) unless every one of ``capabilities`` is effective: it names
    what needed them, which are missing, and how to get them (sudo, or the container's --cap-add)."""
    lacking = missing(capabilities)
    if not lacking:
        return
    if os.geteuid() != 0:
        hint = f"run `sudo ./sudo-run.sh {command}`"
    else:
        adds = ",".join(name.removeprefix("CAP_") for name in lacking)
        hint = f"this root has them dropped: run the container with --cap-add {adds}"
    raise PrivilegeError(f"{what} needs {' and '.join(lacking)}, which this process lacks; {hint}")
