"""A package's public names imported on first use (PEP 562), so importing one small module of it
does not load the rest: the reader process (``rawpacer.readers.spawn``) starts a fresh interpreter
for each reader set and imports only what it runs, never numpy or pyroute2."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping


def attribute(package: str, homes: Mapping[str, str], name: str) -> object:
    """``package``'s attribute ``name``: the public name from its home module in ``homes``, or a
    submodule of that name; imported now and kept on the package. AttributeError for anything else."""
    home = homes.get(name)
    if home is None:
        try:
            value: object = importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.{name}":
                raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
    else:
        value = getattr(importlib.import_module(home), name)
    setattr(sys.modules[package], name, value)
    return value


def homes(table: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Each public name's home module, from ``table`` (home module -> the names it gives): the one
    list a package keeps, its ``__all__`` being the keys of this."""
    return {name: home for home, names in table.items() for name in names}
