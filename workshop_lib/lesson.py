"""What a lesson is to the server: a plug-in with routes, a page, a lifecycle and counts.

The core (``app.py``, ``server.py``) knows lessons only through this interface, so adding
one touches no core file: write a subclass in the lesson's own package and register it under
the entry-point group ``workshop_lib.lessons`` (:mod:`workshop_lib.course`), in this
course's ``pyproject.toml`` or in a package of your own installed beside it::

    class ShoutLesson(Lesson):
        name = "shout"
        pages = (Page("shout", "Shout", "shout.js"),)    # shout.js: a file of this package

        def websocket_routes(self):
            return {"/shout": self.handler}

        async def handler(self, websocket):
            async for message in websocket:
                await websocket.send(message.upper())

A lesson whose clients log in their own way (a header other than ``Authorization``, a
subprotocol) says where in ``credential()``; the core still compares it with the server's
token, so no lesson handles a secret. ``subprotocols`` names the WebSocket subprotocols it
speaks: the handshake selects the first one a client offers.

``start()`` and ``stop()`` run on the server's loop (a ticker is started there);
``stats()`` is read on the loop too, for ``/api/stats``, so it may read the lesson's state
without locks. Before ``start()`` the server sets ``lesson.context``, a
:class:`LessonContext` that owns the lesson's background tasks for this run::

    async def start(self):
        self.context.spawn(self.follow_forever(), name="shout-follow")

A task spawned there is kept until done, logged if it fails, and cancelled and awaited
after ``stop()`` (:func:`stop_lesson`) if ``stop()`` did not end it itself: a lesson
cancels in ``stop()`` only what must end in a given order (``await
self.context.cancel(tasks)``).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from .server.tasks import TaskOwner

__all__ = [
    "Handler",
    "JsonRoute",
    "Lesson",
    "LessonContext",
    "Page",
    "Post",
    "start_lesson",
    "stop_lesson",
]

Handler = Callable[[ServerConnection], Awaitable[None]]
"""A WebSocket handler: ``async def handler(websocket)``, websockets' own shape."""

JsonRoute = Callable[[], object]
"""A small HTTP endpoint: a function returning what ``GET`` answers, as JSON."""


@dataclass(frozen=True)
class Post:
    """A small HTTP endpoint answered on ``POST`` (``GET`` gets 405): ``answer(body)``
    returns the HTTP status and what to send as JSON.

    ``max_body``: the largest body it reads, in bytes. websockets' HTTP parser takes no
    body, so 0 (``Content-Length: 0`` or none) unless the core reads one for the path
    (``bodies.py``); a larger body is refused with 413 before ``answer`` runs.
    """

    answer: Callable[[bytes], tuple[int, object]]
    max_body: int = 0


@dataclass(frozen=True)
class Page:
    """A page of the browser client: ``/#name``, titled ``title``, drawn by ``module``.

    ``module`` is a file of the lesson's own package (:meth:`Lesson.folder`), served at
    ``/lessons/<lesson>/<module>``, whose default export is ``mount(root) -> unmount``; the
    browser client finds it through ``/api/pages``. It imports the course's shared modules
    from ``../../static/`` (``dom.js``, ``socket.js``, ``auth.js``, ``connection.js``).
    """

    name: str
    title: str
    module: str


class LessonContext(TaskOwner):
    """What the server hands a lesson for one run, as ``lesson.context``: the owner of its
    background tasks (:class:`~workshop_lib.server.tasks.TaskOwner`: ``spawn(coro,
    name=)``, ``named()``, ``cancel()``), made before ``start()`` and closed after ``stop()``.
    """

    def __init__(self, lesson: str) -> None:
        super().__init__(f"lesson {lesson!r}")


async def start_lesson(lesson: Lesson) -> None:
    """How a server starts ``lesson``: a new :class:`LessonContext`, then ``start()``."""
    lesson.context = LessonContext(lesson.name or type(lesson).__name__)
    await lesson.start()


async def stop_lesson(lesson: Lesson) -> None:
    """How a server stops ``lesson``: ``stop()``, then whatever it left running in its
    context cancelled and awaited (even if ``stop()`` failed)."""
    try:
        await lesson.stop()
    finally:
        await lesson.context.close()


class Lesson:
    """Base of every lesson: override what the lesson has; the defaults are "nothing"."""

    name: str = ""
    """Short and unique: the key of its counts in ``/api/stats``, and of its settings."""

    pages: tuple[Page, ...] = ()
    """The browser client's pages for this lesson, in the order of the navigation bar."""

    order: int = 100
    """Where an installed lesson goes in the course (and its pages in the navigation bar):
    lower first. The course's own lessons take 10 to 40, so a plug-in comes after them."""

    package: str | None = None
    """The package whose folder holds its pages' modules and what they import (``.js``,
    ``.css``...), served at ``/lessons/<name>/``; None: the package of the module of the
    class that set ``pages`` (so a subclass keeps its parent's pages and their folder)."""

    subprotocols: tuple[str, ...] = ()
    """WebSocket subprotocols its clients may offer, in order of preference."""

    max_size: int | None = None
    """The largest message its routes take, in bytes; None: the server's limit (64 KiB)."""

    keyed_routes: frozenset[str] = frozenset()
    """Its routes (WebSocket or HTTP) that only a key it :meth:`owns_key` opens, such as the
    instructor's view of the room: the server's token gets 403 there, no key 401."""

    def websocket_routes(self) -> Mapping[str, Handler]:
        """WebSocket paths this lesson serves, e.g. ``{"/ball": self.handler}``."""
        return {}

    def http_routes(self) -> Mapping[str, JsonRoute | Post]:
        """Plain HTTP JSON endpoints, e.g. ``{"/api/ball": self.snapshot}`` (a ``GET``), or
        ``{"/api/mint": Post(self.mint)}``."""
        return {}

    def credential(self, request: Request) -> str | None:
        """The token a handshake carries outside ``Authorization: Bearer``, or None.

        The core reads the ``Authorization`` header itself; override this only for clients
        that send their key elsewhere. The core checks what it returns against the token.
        """
        return None

    def owns_key(self, key: str) -> bool:
        """Whether ``key`` has the form of a key this lesson issues itself (Realtime's
        ``ek_`` keys). Such a key opens this lesson's routes only, on any server: the core
        asks :meth:`check_key` instead of comparing it with the token, and refuses it on
        every other route."""
        return False

    def check_key(self, key: str) -> str | None:
        """None if ``key`` (one this lesson :meth:`owns_key`) opens its routes now, else a
        line for the client saying why not and what to do."""
        return "This lesson issues no keys.\n"

    @property
    def context(self) -> LessonContext:
        """This run's :class:`LessonContext`, set by the server before :meth:`start`.

        A lesson started by hand (``await lesson.start()`` in a test) gets one of its own
        on first use; then only its ``stop()`` ends its tasks.
        """
        context = self.__dict__.get("_context")
        if context is None:
            context = self._context = LessonContext(self.name or type(self).__name__)
        return context

    @context.setter
    def context(self, context: LessonContext) -> None:
        self._context = context

    async def start(self) -> None:
        """Start background work (on the server's loop, before the first client): spawn
        its tasks with ``self.context.spawn()``."""

    async def stop(self) -> None:
        """Stop background work (on the server's loop, after the last client left)."""

    def stats(self) -> dict[str, object]:
        """Counts for the room's overview page: no names, no messages, nothing secret."""
        return {}

    def health(self) -> dict[str, str]:
        """For ``/healthz``: the state of what the lesson depends on, e.g.
        ``{"redis": "unreachable"}`` ("unreachable" makes the server's status "degraded")."""
        return {}

    @classmethod
    def folder(cls) -> Path:
        """The folder its browser files are served from; ValueError says why there is none.

        Found through the import system, so it is the same in a clone, an editable install
        and a wheel.
        """
        # The class that gave the pages: a subclass that keeps its parent's pages (a test's
        # RecordingRealtime) keeps its parent's folder.
        owner = next((c for c in cls.__mro__ if "pages" in vars(c)), cls)
        package = cls.package or getattr(sys.modules.get(owner.__module__), "__package__", None)
        if not package:
            raise ValueError(
                f"{owner.__name__} is defined in {owner.__module__}, which is in no package: its "
                "pages' modules are files of a package, so set its `package` to the package "
                "that holds them"
            )
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"{cls.__name__}: its package {package!r} is no package installed")
        return Path(next(iter(spec.submodule_search_locations)))

    def check_pages(self) -> None:
        """Raise ValueError, saying which, if a page's module is not a file of :meth:`folder`."""
        if not self.pages:
            return
        folder = self.folder()
        for page in self.pages:
            name = page.module
            plain = "/" not in name and "\\" not in name and name not in ("", ".", "..")
            if not plain or not (folder / name).is_file():
                raise ValueError(
                    f"{type(self).__name__}'s page {page.name!r}: its module {name!r} is no "
                    f"file in {folder} (a page's module is a file name in the lesson's package)"
                )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
