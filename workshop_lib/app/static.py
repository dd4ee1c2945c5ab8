"""The browser's files: the course's shell at ``/`` and ``/static/``, each lesson's page at
``/lessons/<lesson>/<file>``.

    files = StaticFiles(static_folder(), refused)       # refused: the app's Tally of refusals
    files.add_lesson("ball", ball_folder)
    files.respond(connection, "/static/main.js")        # a Response, or None: not a file path

A file is read on each request (learners edit them during the course) and served with an
explicit content type and ``Cache-Control: no-cache``. Nothing outside a folder is served:
no ``..``, no absolute path, no symbolic link that leads out, and a control character in a
name is a 400 (a probe, never a file). A lesson's folder serves browser files only, never
its Python sources, its solutions or its data.
"""

from __future__ import annotations

import http
import logging
import mimetypes
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Response

from ..server.logs import Tally, peer

__all__ = ["StaticFiles"]

# Explicit, because some systems' mimetypes registry maps .js to text/plain, and browsers
# refuse to run a module script served as text/plain.
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}

# What a lesson's folder serves at /lessons/<lesson>/: browser files, never its Python
# sources, its solutions or its data.
_LESSON_FILE_TYPES = frozenset({".js", ".css", ".svg", ".png"})


class StaticFiles:
    """Answers GETs of the shell's files and of the running lessons' browser files."""

    def __init__(self, shell: Traversable, refused: Tally) -> None:
        self.shell = shell  # the course's static/ (index.html, main.js, ...)
        self.refused = refused  # where a probe's refusal is logged (floods: a count)
        self.lessons: dict[str, Path] = {}  # lesson name -> its pages' folder

    def add_lesson(self, name: str, folder: Path) -> None:
        """Serve ``folder``'s browser files at ``/lessons/<name>/``."""
        self.lessons[name] = folder

    def respond(self, connection: ServerConnection, path: str) -> Response | None:
        """The answer to a GET of ``path`` (no query), or None when ``path`` names no file
        of theirs (the caller answers 404)."""
        if path in ("/", "/index.html"):
            return self._file(connection, self.shell, "/static/", "index.html")
        if path.startswith("/static/"):
            return self._file(connection, self.shell, "/static/", path.removeprefix("/static/"))
        if path.startswith("/lessons/"):
            return self._lesson_file(connection, path.removeprefix("/lessons/"))
        return None

    def _lesson_file(self, connection: ServerConnection, rest: str) -> Response:
        """``/lessons/<lesson>/<file>``: a browser file of a running lesson's own folder."""
        quoted, _, relative = rest.partition("/")
        folder = self.lessons.get(unquote(quoted))
        if folder is None or "." + relative.rpartition(".")[2].lower() not in _LESSON_FILE_TYPES:
            return connection.respond(
                http.HTTPStatus.NOT_FOUND,
                f"Not found: /lessons/{rest[:200]}. A running lesson's pages are listed at "
                "/api/pages.\n",
            )
        return self._file(connection, folder, f"/lessons/{quoted}/", relative)

    def _file(
        self, connection: ServerConnection, root: Traversable, prefix: str, relative: str
    ) -> Response:
        """The file at ``prefix + relative``: ``relative`` below ``root``, never outside it."""
        name = unquote(relative)
        if any(ord(c) < 32 or c == "\x7f" for c in name):
            # A NUL (or another control character) is no file name on any system: a probe.
            self.refused.log(
                logging.WARNING,
                "%s refused (400): a control character in the path %s%r",
                peer(connection),
                prefix[:100],
                name[:100],
                kind="bad path",
            )
            return connection.respond(
                http.HTTPStatus.BAD_REQUEST, "A file name has no control characters.\n"
            )
        file = _below(root, name)
        body = _read(file) if file is not None else None
        if file is None or body is None:
            return connection.respond(
                http.HTTPStatus.NOT_FOUND, f"Not found: {prefix[:100]}{relative[:200]}\n"
            )
        suffix = "." + file.name.rpartition(".")[2]
        content_type = _CONTENT_TYPES.get(suffix) or (
            mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        response = connection.respond(http.HTTPStatus.OK, "")
        response.body = body
        # respond() set both headers for its empty body; Headers.__setitem__ would add a
        # second copy, and browsers refuse a response with two Content-Lengths.
        del response.headers["Content-Length"], response.headers["Content-Type"]
        response.headers["Content-Length"] = str(len(body))
        response.headers["Content-Type"] = content_type
        # Learners edit the client's files during the course: always revalidate.
        response.headers["Cache-Control"] = "no-cache"
        return response


def _below(root: Traversable, relative: str) -> Traversable | None:
    """The file at ``relative`` below ``root``, or None: no "..", no absolute path, no folder."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") or "\\" in part for part in parts):
        return None  # nothing may climb out of the folder, whatever the platform's separators
    file = root.joinpath(*parts)
    try:
        if not file.is_file():
            return None
        if isinstance(root, Path) and isinstance(file, Path):
            # A symbolic link inside the folder (to a file or a folder) must not lead out of it.
            file.resolve(strict=True).relative_to(root.resolve(strict=True))
        return file
    except (OSError, ValueError):  # a name too long, a link out of the folder, and the like
        return None


def _read(file: Traversable) -> bytes | None:
    try:
        return file.read_bytes()
    except OSError:  # removed between the check and the read (learners edit static/)
        return None
