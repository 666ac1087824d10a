"""A Python entry point whose keyword parameters are those of the function that checks them.

``compare(...)`` takes exactly ``make_config``'s options and ``rfc2544(...)``
``make_rfc2544_config``'s: ``@takes(check)`` gives the decorated run ``check``'s parameters, typed
for mypy (PEP 612's ParamSpec) and shown by ``inspect.signature`` and editors with their defaults,
so each option list is written once, where it is checked.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
Checked = TypeVar("Checked")
Result = TypeVar("Result")


def takes(check: Callable[P, Checked]) -> Callable[[Callable[[Checked], Result]], Callable[P, Result]]:
    """Decorate ``run(checked)``: the result takes ``check``'s parameters and returns ``run(check(...))``."""

    def decorate(run: Callable[[Checked], Result]) -> Callable[P, Result]:
        @functools.wraps(run)
        def entry(*args: P.args, **kwargs: P.kwargs) -> Result:
            return run(check(*args, **kwargs))

        returns = inspect.signature(run).return_annotation
        entry.__signature__ = inspect.signature(check).replace(return_annotation=returns)  # type: ignore[attr-defined]
        del entry.__wrapped__  # inspect and help() show check's parameters, not run's one argument
        return entry

    return decorate
