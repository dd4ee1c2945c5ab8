"""Reading websockets internals behind a check: what a module reads is looked for at import, and
a fallback on public API is chosen, with one WARNING, when something is missing::

    IMPLEMENTATION = choose(missing_internals(), "in band", "websockets", logger,
                            "closing.py", "a 1009 close without the event before it")

Each module that reads internals (``fanout.py``, ``stalls.py``, ``closing.py``,
``app/connections.py``) lists them in its ``missing_internals()``, chooses with :func:`choose`,
and says which implementation is in use in its ``IMPLEMENTATION``.
"""

from __future__ import annotations

import logging
from typing import TypeVar

import websockets

__all__ = ["assigned_in", "choose"]

T = TypeVar("T")


def assigned_in(cls: type, method: str, name: str) -> bool:
    """Whether ``cls.method``'s code names ``name`` (an attribute it sets): how an attribute
    of an object that cannot be made without a running loop is looked for."""
    code = getattr(getattr(cls, method, None), "__code__", None)
    return code is not None and name in code.co_names


def choose(
    missing: list[str], preferred: T, fallback: T, logger: logging.Logger, module: str, what: str
) -> T:
    """``preferred`` if nothing is ``missing``; else ``fallback``, after one WARNING naming
    what ``module`` lacks and what the fallback does instead (``what``)."""
    if not missing:
        return preferred
    logger.warning(
        "websockets %s lacks internals %s uses (%s): %s",
        websockets.__version__,
        module,
        ", ".join(missing),
        what,
    )
    return fallback
