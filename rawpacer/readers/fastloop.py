"""The C fast path (``rawpacer._readloop``): ``available()`` says whether it was built.

``FastLoop`` has the same interface as ``pyloop.PyLoop`` (the reference counter plus its socket
loop) and follows the same rules; tests hold the two to the same verdicts.
"""

from __future__ import annotations

try:
    from rawpacer._readloop import Counter as FastLoop
except ImportError:  # built without a C compiler: the readers run pyloop instead
    FastLoop = None  # type: ignore[assignment,misc]  # the class or None; available() tells which


def available() -> bool:
    """The C loop was built and can be used."""
    return FastLoop is not None


__all__ = ["FastLoop", "available"]
