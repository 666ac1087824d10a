"""Network sandboxes: every packet rawpacer sends stays in namespaces it creates and removes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawpacer import lazy

if TYPE_CHECKING:  # ``A as A``: re-exported for mypy, which cannot read the computed __all__
    from rawpacer.sandbox.netns import current_is_owned as current_is_owned
    from rawpacer.sandbox.netns import enter_namespace as enter_namespace
    from rawpacer.sandbox.netns import owned as owned
    from rawpacer.sandbox.netns import remove_stale as remove_stale
    from rawpacer.sandbox.topology import IP_VERSIONS as IP_VERSIONS
    from rawpacer.sandbox.topology import KINDS as KINDS
    from rawpacer.sandbox.topology import READER_IP as READER_IP
    from rawpacer.sandbox.topology import READER_IP6 as READER_IP6
    from rawpacer.sandbox.topology import WRITER_IP as WRITER_IP
    from rawpacer.sandbox.topology import WRITER_IP6 as WRITER_IP6
    from rawpacer.sandbox.topology import Sandbox as Sandbox
    from rawpacer.sandbox.topology import Topology as Topology
    from rawpacer.sandbox.topology import live_namespaces as live_namespaces
    from rawpacer.sandbox.topology import pid_namespaces as pid_namespaces
    from rawpacer.sandbox.topology import vlan_filter_support as vlan_filter_support
    from rawpacer.sandbox.vlan import VlanCounts as VlanCounts
    from rawpacer.sandbox.vlan import VlanFilter as VlanFilter

_HOMES = lazy.homes(
    {
        "rawpacer.sandbox.netns": ("current_is_owned", "enter_namespace", "owned", "remove_stale"),
        "rawpacer.sandbox.topology": (
            "IP_VERSIONS",
            "KINDS",
            "READER_IP",
            "READER_IP6",
            "WRITER_IP",
            "WRITER_IP6",
            "Sandbox",
            "Topology",
            "live_namespaces",
            "pid_namespaces",
            "vlan_filter_support",
        ),
        "rawpacer.sandbox.vlan": ("VlanCounts", "VlanFilter"),
    }
)
"""Where each public name lives; imported on first use (``rawpacer.lazy``), so a module of this
package imports no more than it needs."""

__all__ = list(_HOMES)


def __getattr__(name: str) -> object:
    """A public name or submodule, imported on its first use (PEP 562)."""
    return lazy.attribute(__name__, _HOMES, name)
