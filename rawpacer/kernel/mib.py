"""The IP, ICMP and UDP MIB counters of this thread's namespace (RFC 4293's and RFC 4292's objects as
Linux exports them): ``/proc/thread-self/net/snmp`` and ``netstat`` (name/value line pairs) and
``snmp6`` (one name and value a line), as ``Section.Name`` (``Udp.NoPorts``, ``Ip6.InNoRoutes``).

``/proc/thread-self/net`` follows the thread's namespace, unlike ``/proc/net``, which follows the process's.
"""

from __future__ import annotations

PROC = "/proc/thread-self/net"
"""This thread's namespace's /proc/net."""

SNMP6_SECTIONS = ("UdpLite6", "Icmp6", "Udp6", "Ip6")
"""Prefixes of /proc/net/snmp6's names, longest first (``Udp6NoPorts`` is ``Udp6.NoPorts``)."""


def pairs(path: str) -> dict[str, int]:
    """``Section: names`` / ``Section: values`` line pairs (snmp, netstat) as ``Section.Name``."""
    out: dict[str, int] = {}
    with open(path) as handle:
        lines = handle.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        section, _, keys = names.partition(":")
        for key, value in zip(keys.split(), values.partition(":")[2].split()):
            out[f"{section}.{key}"] = int(value)
    return out


def snmp6() -> dict[str, int]:
    """``Ip6InReceives 5`` lines as ``Ip6.InReceives``; empty where the kernel has no IPv6."""
    try:
        with open(f"{PROC}/snmp6") as handle:
            rows = [line.split() for line in handle]
    except FileNotFoundError:
        return {}
    out = {}
    for name, value in (row for row in rows if len(row) == 2):
        for section in SNMP6_SECTIONS:
            if name.startswith(section):
                out[f"{section}.{name[len(section) :]}"] = int(value)
                break
    return out


def read_mib() -> dict[str, int]:
    """snmp, netstat (``IpExt.*``, ``TcpExt.*``) and snmp6 of this thread's namespace, in one dict."""
    out = pairs(f"{PROC}/snmp")
    out.update(pairs(f"{PROC}/netstat"))
    out.update(snmp6())
    return out
