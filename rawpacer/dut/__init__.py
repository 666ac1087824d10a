"""The device under test (DUT): what the router topology's middle namespace does to the stream it
forwards, and what it counted doing it.

``parse_profiles`` turns ``--dut`` specs into profiles (tbf, police, drop, rules, conntrack: profiles.py),
``read_script``/``script_lines`` read a user's own setup lines (script.py), ``apply`` runs both inside
the DUT's namespace (apply.py), and ``snapshot`` reads its links, qdiscs, nftables counters and
forwarding MIB (counters.py), which the diagnosis layer above turns into causes.
"""

from __future__ import annotations

from rawpacer.dut.apply import apply
from rawpacer.dut.counters import snapshot
from rawpacer.dut.profiles import PROFILES, Command, Profile, parse_profile, parse_profiles
from rawpacer.dut.script import read_script, script_lines

__all__ = [
    "PROFILES",
    "Command",
    "Profile",
    "apply",
    "parse_profile",
    "parse_profiles",
    "read_script",
    "script_lines",
    "snapshot",
]
