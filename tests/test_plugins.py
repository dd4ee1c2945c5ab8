"""Lessons are plug-ins found through the entry-point group ``workshop_lib.lessons``; a
broken one is left out with one line in the log; a lesson's folder serves its browser files
and nothing else. (An outside package installed with pip: tests/browser/test_plugin_lesson.py.)
"""

from __future__ import annotations

import logging
import socket
import textwrap
import urllib.error
import urllib.request
import uuid
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import workshop_lib
from workshop_lib import WorkshopServer, start_server
from workshop_lib.app.app import App
from workshop_lib.course import GROUP, default_lessons, installed_lessons
from workshop_lib.lesson import Lesson, Page


def status_of(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", "")


def test_the_plugin_api_is_the_package_s_own_face():
    from workshop_lib import Lesson as PublicLesson
    from workshop_lib import Page as PublicPage

    assert (PublicLesson, PublicPage) == (Lesson, Page)
    assert {"Lesson", "Page"} <= set(dir(workshop_lib)) and "start_server" in dir(workshop_lib)


def test_broken_entry_points_are_left_out_with_one_line_each(caplog):
    found = (
        EntryPoint("ghost", "no_such_package.server:GhostLesson", GROUP),
        EntryPoint("echo", "workshop_lib.echo.server:EchoLesson", GROUP),
        EntryPoint("dumps", "json:dumps", GROUP),  # not a Lesson
        EntryPoint("bouncy", "workshop_lib.ball.server:BallLesson", GROUP),  # named "ball"
        EntryPoint("echo", "workshop_lib.chat.server:ChatLesson", GROUP),  # "echo" is taken
    )
    with caplog.at_level(logging.ERROR, logger="workshop_lib.course"):
        classes = installed_lessons(found)
    assert list(classes) == ["echo"] and classes["echo"].__name__ == "EchoLesson"
    lines = [r.getMessage() for r in caplog.records if r.name == "workshop_lib.course"]
    assert len(lines) == 4, lines
    ghost, dumps, bouncy, twice = lines
    assert "'ghost'" in ghost and "no_such_package.server:GhostLesson" in ghost
    assert "ModuleNotFoundError: No module named 'no_such_package'" in ghost
    assert "runs without it" in ghost and "fix that package or uninstall it" in ghost
    assert "not a subclass of workshop_lib.Lesson" in dumps
    assert "the entry point's name must be the lesson's name" in bouncy
    assert "called 'echo' already" in twice


@pytest.fixture
def installed_beside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package of lessons and its metadata on the path, as pip would leave them: good,
    one whose page module is missing, one whose constructor fails, and one that is no class.
    Its name is new each time (this worker may have imported an earlier one)."""
    package = f"plugins_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from workshop_lib import Lesson, Page

            class GoodLesson(Lesson):
                name = "good"
                order = 5  # before the course's own lessons
                pages = (Page("good", "Good", "good.js"),)

            class PagelessLesson(Lesson):
                name = "pageless"
                pages = (Page("pageless", "Pageless", "missing.js"),)

            class FailingLesson(Lesson):
                name = "failing"

                def __init__(self):
                    raise RuntimeError("needs a setting it does not have")
            """
        )
    )
    (tmp_path / package / "good.js").write_text("export default (root) => () => {};\n")
    info = tmp_path / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{GROUP}]\n"
        f"good = {package}:GoodLesson\n"
        f"pageless = {package}:PagelessLesson\n"
        f"failing = {package}:FailingLesson\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return package


def test_a_server_starts_without_its_broken_plugins(installed_beside: str, caplog):
    with caplog.at_level(logging.ERROR, logger="workshop_lib.course"):
        lessons = default_lessons()
    assert [lesson.name for lesson in lessons] == ["good", "echo", "ball", "chat", "realtime"]
    lines = [r.getMessage() for r in caplog.records if r.name == "workshop_lib.course"]
    assert len(lines) == 2, lines
    failing, pageless = lines  # in the course's order: "failing" before "pageless"
    assert "'pageless'" in pageless and "'missing.js' is no file in" in pageless
    assert "'failing'" in failing and "RuntimeError: needs a setting it does not have" in failing

    with start_server(port=0, name=f"plug-{uuid.uuid4().hex[:6]}") as server:
        assert [page.name for page in server.app.pages][:2] == ["good", "echo"]
        status, content_type = status_of(server.links.url("/lessons/good/good.js"))
        assert status == 200 and content_type.startswith("text/javascript")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/lessons/echo/echo.js", 200),
        ("/lessons/ball/canvas.js", 200),  # what a page imports from beside it
        ("/lessons/realtime/voice-core.js", 200),
        ("/lessons/echo/server.py", 404),  # a lesson's Python is no browser file
        ("/lessons/echo/__init__.py", 404),
        ("/lessons/checks/solutions/echo.py", 404),
        ("/lessons/echo/../ball/ball.js", 404),  # no climbing out of the folder
        ("/lessons/echo/%2e%2e/ball/ball.js", 404),
        ("/lessons/echo/..%2fserver.py", 404),
        ("/lessons/echo//echo.js", 404),
        ("/lessons/progress/progress.js", 404),  # not running here (and no page)
        ("/lessons/nope/echo.js", 404),
        ("/lessons/echo/", 404),
        ("/lessons/", 404),
        ("/lessons/echo/a%00b.js", 400),
    ],
)
def test_a_lesson_folder_serves_its_browser_files_only(server: WorkshopServer, path, status):
    # Raw, so that the path reaches the server as written (urllib would tidy "..").
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = raw.recv(4096).decode("latin-1")
    assert head.startswith(f"HTTP/1.1 {status} "), (path, head[:200])


def test_symbolic_links_do_not_lead_out_of_a_lesson_folder(tmp_path, monkeypatch):
    package = f"linked_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "page.js").write_text("export default (root) => () => {};\n")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.js").write_text("the instructor's key\n")
    (folder / "leak.js").symlink_to(secret / "key.js")
    (folder / "outside").symlink_to(secret)
    (folder / "inside.js").symlink_to(folder / "page.js")  # inside: still served
    monkeypatch.syspath_prepend(str(tmp_path))

    class Linked(Lesson):
        name = "linked"
        pages = (Page("linked", "Linked", "page.js"),)

    Linked.package = package
    with start_server(port=0, name=f"ln-{uuid.uuid4().hex[:6]}", lessons=[Linked()]) as server:
        assert status_of(server.links.url("/lessons/linked/page.js"))[0] == 200
        assert status_of(server.links.url("/lessons/linked/inside.js"))[0] == 200
        assert status_of(server.links.url("/lessons/linked/leak.js"))[0] == 404
        assert status_of(server.links.url("/lessons/linked/outside/key.js"))[0] == 404


def test_a_page_module_that_is_missing_is_said_at_once():
    class Typo(Lesson):
        name = "typo"
        pages = (Page("typo", "Typo", "ecoh.js"),)
        package = "workshop_lib.echo"

    with pytest.raises(ValueError, match=r"Typo's page 'typo': its module 'ecoh.js' is no file"):
        App([Typo()])

    class Nowhere(Lesson):
        name = "nowhere"
        pages = (Page("nowhere", "Nowhere", "page.js"),)

    Nowhere.__module__ = "__main__"  # as a lesson written in a notebook's cell is
    with pytest.raises(ValueError, match=r"in no package.*set its `package`"):
        App([Nowhere()])


def test_a_subclass_keeps_its_parent_s_pages_and_their_folder():
    """A test's or a learner's subclass of a course lesson, defined elsewhere, still serves
    the parent's page from the parent's package."""
    from workshop_lib.echo.server import EchoLesson

    class LoudEcho(EchoLesson):
        name = "loud"

    assert LoudEcho.folder() == EchoLesson.folder()
    with start_server(port=0, name=f"sub-{uuid.uuid4().hex[:6]}", lessons=[LoudEcho()]) as server:
        status, content_type = status_of(server.links.url("/lessons/loud/echo.js"))
        assert status == 200 and content_type.startswith("text/javascript")
