"""Network sandboxes: every packet rawpacer sends stays in namespaces it creates and removes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawpacer import lazy

if TYPE_CHECKING:
    from rawpacer.sandbox.netns import current_is_owned, enter_namespace, owned, remove_stale
    from rawpacer.sandbox.topology import (
        IP_VERSIONS,
        KINDS,
        READER_IP,
        READER_IP6,
        WRITER_IP,
        WRITER_IP6,
        Sandbox,
        Topology,
        live_namespaces,
        pid_namespaces,
        vlan_filter_support,
    )
    from rawpacer.sandbox.vlan import VlanCounts, VlanFilter

_HOMES = {
    "current_is_owned": "rawpacer.sandbox.netns",
    "enter_namespace": "rawpacer.sandbox.netns",
    "owned": "rawpacer.sandbox.netns",
    "remove_stale": "rawpacer.sandbox.netns",
    "IP_VERSIONS": "rawpacer.sandbox.topology",
    "KINDS": "rawpacer.sandbox.topology",
    "READER_IP": "rawpacer.sandbox.topology",
    "READER_IP6": "rawpacer.sandbox.topology",
    "WRITER_IP": "rawpacer.sandbox.topology",
    "WRITER_IP6": "rawpacer.sandbox.topology",
    "Sandbox": "rawpacer.sandbox.topology",
    "Topology": "rawpacer.sandbox.topology",
    "live_namespaces": "rawpacer.sandbox.topology",
    "pid_namespaces": "rawpacer.sandbox.topology",
    "vlan_filter_support": "rawpacer.sandbox.topology",
    "VlanCounts": "rawpacer.sandbox.vlan",
    "VlanFilter": "rawpacer.sandbox.vlan",
}
"""Where each public name lives; imported on first use (``rawpacer.lazy``), so a module of this
package imports no more than it needs."""

__all__ = [
    "IP_VERSIONS",
    "KINDS",
    "READER_IP",
    "READER_IP6",
    "WRITER_IP",
    "WRITER_IP6",
    "Sandbox",
    "Topology",
    "VlanCounts",
    "VlanFilter",
    "current_is_owned",
    "enter_namespace",
    "live_namespaces",
    "owned",
    "pid_namespaces",
    "remove_stale",
    "vlan_filter_support",
]


def __getattr__(name: str) -> object:
    """A public name or submodule, imported on its first use (PEP 562)."""
    return lazy.attribute(__name__, _HOMES, name)
