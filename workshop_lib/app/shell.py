"""Where the browser client's shell is: ``static/`` (``index.html``, ``main.js``, the shared
modules, ``style.css``), at the top of a clone and inside the package in a wheel.

``setup.py`` maps the clone's top-level ``static/`` to ``workshop_lib/static`` in a wheel, so
``pip install .`` serves what a clone serves. The lessons' pages are not here: each is a file
of its lesson's own package (:meth:`workshop_lib.lesson.Lesson.folder`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["static_folder"]

_PACKAGE = Path(__file__).resolve().parent.parent  # workshop_lib/


def static_folder() -> Path:
    """The shell's folder: the wheel's copy inside the package, else the clone's own."""
    for folder in (_PACKAGE / "static", _PACKAGE.parent / "static"):
        if (folder / "index.html").is_file():
            return folder
    raise FileNotFoundError(
        f"The browser client's static/ is in neither {_PACKAGE} nor {_PACKAGE.parent}: "
        "reinstall the course (pip install -e . in a clone)"
    )
