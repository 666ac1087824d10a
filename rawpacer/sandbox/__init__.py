"""Network sandboxes: every packet rawpacer sends stays in namespaces it creates and removes."""

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
