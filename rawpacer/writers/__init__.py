"""Writers: every way rawpacer sends a fan-out, behind the one interface of ``writers.base``."""

from rawpacer.target import Link, Target
from rawpacer.writers.base import Fit, Writer, WriterOptions, get, names, register

__all__ = ["Fit", "Link", "Target", "Writer", "WriterOptions", "get", "names", "register"]
