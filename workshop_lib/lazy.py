"""Short imports without heavy ones: a package's names, imported on first use (PEP 562).

A lesson's ``__init__.py`` lists where its public names live::

    __getattr__, __dir__ = lazy_names(__name__, {"BallView": ".widgets", "BallLesson": ".server"})

so a notebook writes ``from workshop_lib.ball import BallView`` while the server, the
command line and the benchmarks' child processes import ``workshop_lib.ball.server``
without loading ipywidgets.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

__all__ = ["lazy_names"]


def lazy_names(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``where`` maps a name to its module."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name], package), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
