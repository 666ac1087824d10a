"""Network sandboxes: every packet rawpacer sends stays in namespaces it creates and removes."""

from rawpacer.sandbox.netns import current_is_owned, enter_namespace, owned, remove_stale
from rawpacer.sandbox.topology import (
    KINDS,
    READER_IP,
    WRITER_IP,
    Sandbox,
    Topology,
    live_namespaces,
    pid_namespaces,
)

__all__ = [
    "KINDS",
    "READER_IP",
    "WRITER_IP",
    "Sandbox",
    "Topology",
    "current_is_owned",
    "enter_namespace",
    "live_namespaces",
    "owned",
    "pid_namespaces",
    "remove_stale",
]
