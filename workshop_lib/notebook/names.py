"""The learner's display name: what their widgets are called in a workshop's shared room.

``WORKSHOP_NAME`` in the environment wins; otherwise the name given in notebook 00
(:class:`~workshop_lib.notebook.namebox.NameBox`), kept in a small file in Jupyter's runtime
directory, per user, so every notebook and kernel of the session finds it::

    display_name("me")      # 'ada', or "me" when nobody said
    remember_name("ada")    # what 00's box does
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MAX_NAME", "NAME_VARIABLE", "display_name", "name_file", "remember_name"]

NAME_VARIABLE = "WORKSHOP_NAME"
MAX_NAME = 32  # the chat's limit for a name (chat/model.py)


def name_file() -> Path:
    """Where a name given in notebook 00 is kept: Jupyter's runtime directory, per user."""
    from jupyter_core.paths import jupyter_runtime_dir  # jupyter_core comes with Jupyter

    return Path(jupyter_runtime_dir()) / "workshop-name"


def _clean(name: str) -> str | None:
    name = name.strip()
    return name if 1 <= len(name) <= MAX_NAME and name.isprintable() else None


def display_name(default: str | None = None) -> str | None:
    """``WORKSHOP_NAME``, else the name given in notebook 00, else ``default``."""
    given = _clean(os.environ.get(NAME_VARIABLE, ""))
    if given:
        return given
    try:
        kept = _clean(name_file().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        kept = None
    return kept or default


def remember_name(name: str) -> str:
    """Keep ``name`` for the session's notebooks; the cleaned name, or ValueError saying why."""
    cleaned = _clean(name)
    if cleaned is None:
        raise ValueError(f"a name is 1 to {MAX_NAME} characters, with no line breaks or tabs")
    path = name_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cleaned, encoding="utf-8")
    return cleaned
