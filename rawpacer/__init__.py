"""rawpacer: hand-built Ethernet/IPv4/UDP fan-out to kernel UDP readers, measured side by side.

Layers, each a subpackage: ``headers`` (builders) -> ``writers`` -> ``readers`` (delivery
checking) -> ``bench`` -> ``report`` -> ``cli``; ``sandbox`` holds the network namespaces
every packet is confined to.

The Python API (docs/api.md): ``headers``; ``compare(...)`` and ``rfc2544(...)``, the two runs, and
their results ``Report`` (of ``WriterResult``s and their ``Sample``s) and ``Run``; ``send(...)``, a
replay of frames or a capture, and its ``ReplayResult``; ``WriterOptions``
and the writers' knobs for building a writer yourself; ``UsageError``, what a bad value raises. Each is
imported on first use (PEP 562), so ``import rawpacer`` loads none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rawpacer import headers
    from rawpacer.bench import compare, rfc2544
    from rawpacer.bench.replay import ReplayResult, send
    from rawpacer.bench.result import Report, Sample, WriterResult
    from rawpacer.bench.rfc2544_suite.result import Run
    from rawpacer.errors import RawpacerError, UsageError
    from rawpacer.writers.base import Fit, Knobs, WriterOptions
    from rawpacer.writers.packet_ring import RingKnobs
    from rawpacer.writers.udp_concurrent import PoolKnobs
    from rawpacer.writers.xdp import XdpKnobs

_HOMES = {
    "headers": "rawpacer.headers",
    "compare": "rawpacer.bench",
    "rfc2544": "rawpacer.bench",
    "Report": "rawpacer.bench.result",
    "WriterResult": "rawpacer.bench.result",
    "Sample": "rawpacer.bench.result",
    "Run": "rawpacer.bench.rfc2544_suite.result",
    "send": "rawpacer.bench.replay",
    "ReplayResult": "rawpacer.bench.replay",
    "WriterOptions": "rawpacer.writers.base",
    "Fit": "rawpacer.writers.base",
    "Knobs": "rawpacer.writers.base",
    "RingKnobs": "rawpacer.writers.packet_ring",
    "PoolKnobs": "rawpacer.writers.udp_concurrent",
    "XdpKnobs": "rawpacer.writers.xdp",
    "RawpacerError": "rawpacer.errors",
    "UsageError": "rawpacer.errors",
}
"""Where each public name lives: a module of its own (``headers``) or an attribute of one."""

__all__ = [
    "Fit",
    "Knobs",
    "PoolKnobs",
    "RawpacerError",
    "ReplayResult",
    "Report",
    "RingKnobs",
    "Run",
    "Sample",
    "UsageError",
    "WriterOptions",
    "WriterResult",
    "XdpKnobs",
    "__version__",
    "compare",
    "headers",
    "rfc2544",
    "send",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """Import the home of a public name on its first use and keep it here (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(home)
    value = module if home == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names with the module's own, loaded or not."""
    return sorted({*globals(), *_HOMES})
