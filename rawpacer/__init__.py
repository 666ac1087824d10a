"""rawpacer: hand-built Ethernet/IPv4/UDP fan-out to kernel UDP readers, measured side by side.

Layers, each a subpackage: ``headers`` (builders) -> ``writers`` -> ``readers`` (delivery
checking) -> ``bench`` -> ``report`` -> ``cli``; ``sandbox`` holds the network namespaces
every packet is confined to.
"""

from rawpacer import headers

__all__ = ["__version__", "headers"]
__version__ = "0.1.0"
