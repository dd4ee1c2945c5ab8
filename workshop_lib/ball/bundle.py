"""One module text from browser files that import each other: what an anywidget needs.

An anywidget's front end (``_esm``) is a single module, loaded where the course's server is
not reachable, so it cannot import the files beside it. :func:`bundle` follows an entry
file's imports and writes each imported file once, before the files that use it, without
its ``import`` lines and ``export`` keywords: the widget runs the very code the page runs.

Files name each other as the server serves them (``./canvas.js``,
``../../static/reconnect.js``): ``folders`` says which folder each served path is in.

Only the forms the course writes are understood (``import { a, b } from "./x.js";`` and
``export function / const / class``); anything else raises :class:`ValueError` at once,
rather than make a module that breaks in the browser.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["bundle"]

_IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"([^"]+)";[ \t]*\n?', re.MULTILINE)
_ANY_IMPORT = re.compile(r"^import\b.*$", re.MULTILINE)
_EXPORT = re.compile(r"^export\s+(?=(?:async\s+)?function\b|const\b|let\b|class\b)", re.MULTILINE)
_ANY_EXPORT = re.compile(r"^export\b.*$", re.MULTILINE)
_DECLARED = re.compile(
    r"^(?:export\s+)?(?:async\s+)?(?:function\*?|const|let|var|class)\s+([A-Za-z_$][\w$]*)",
    re.MULTILINE,
)
_EXPORTED = re.compile(
    r"^export\s+(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)", re.MULTILINE
)
_NAME = re.compile(r"[A-Za-z_$][\w$]*")


def bundle(entry: str, folders: Mapping[str, Path]) -> str:
    """The module at served path ``entry`` (e.g. ``"/lessons/ball/view.js"``) with every
    file it imports written into it, each once, dependencies first.

    ``folders`` maps a served folder (``"/static/"``) to where its files are on disk. The
    entry keeps its own exports (``export default`` included); imported files lose theirs.
    """
    parts: list[str] = []
    declared: dict[str, str] = {}  # top-level name -> the served path that declares it
    done: set[str] = set()

    def add(path: str, chain: tuple[str, ...]) -> None:
        if path in chain:
            raise ValueError(f"{' -> '.join((*chain, path))}: files that import each other")
        if path in done:
            return
        text = _read(path, folders)
        for names, spec in _imports(text, path):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(path), spec))
            add(target, (*chain, path))
            exported = set(_EXPORTED.findall(_read(target, folders)))
            if missing := [name for name in names if name not in exported]:
                raise ValueError(
                    f"{path} imports {', '.join(missing)}, which {target} does not export"
                )
        for name in _DECLARED.findall(text):
            if name in declared:
                raise ValueError(f"{name} is declared in both {declared[name]} and {path}")
            declared[name] = path
        body = _IMPORT.sub("", text)
        if path != entry:
            body = _EXPORT.sub("", body)
            if stray := _ANY_EXPORT.search(body):
                raise ValueError(f"{path}: cannot inline {stray.group(0)!r}")
        parts.append(f"// ---- {path} ----\n{body.strip()}\n")
        done.add(path)

    add(entry, ())
    return "\n".join(parts)


def _read(path: str, folders: Mapping[str, Path]) -> str:
    for prefix, folder in folders.items():
        if path.startswith(prefix):
            return (folder / path.removeprefix(prefix)).read_text(encoding="utf-8")
    raise ValueError(f"{path}: in none of the folders {sorted(folders)}")


def _imports(text: str, path: str) -> list[tuple[list[str], str]]:
    """Each ``import { names } from "spec";`` of ``text``; any other import is an error."""
    found = [
        ([name.strip() for name in names.split(",") if name.strip()], spec)
        for names, spec in _IMPORT.findall(text)
    ]
    if stray := _ANY_IMPORT.search(_IMPORT.sub("", text)):
        raise ValueError(f"{path}: cannot inline {stray.group(0)!r}")
    for names, _spec in found:
        for name in names:
            if not _NAME.fullmatch(name):  # "a as b": the inlined file keeps its own names
                raise ValueError(f"{path}: cannot inline the import of {name!r}")
    return found
