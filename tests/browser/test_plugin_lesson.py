"""A lesson written outside this repository plugs in: installed with pip beside the course
(both as wheels, not editable, in a fresh venv), it gets its route, its page module and its
place in the navigation, and Chromium mounts its page. A broken plug-in installed beside it
is left out with one line in the log, and the course runs.

Not installed into the test run's own environment: every xdist worker's servers would then
run the test's lesson too (entry points are read from what is installed).
"""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from tests.conftest import ARTIFACTS, ROOT
from tests.installed import build_wheel, fresh_venv, serving

SHOUT = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "shout-lesson"
        version = "0.1"

        [project.entry-points."workshop_lib.lessons"]
        shout = "shout_lesson:ShoutLesson"

        [tool.setuptools.package-data]
        shout_lesson = ["*.js"]
    """,
    "shout_lesson/__init__.py": '''
        """A lesson of someone else's: what you send comes back in capitals."""

        from workshop_lib import Lesson, Page


        class ShoutLesson(Lesson):
            name = "shout"
            pages = (Page("shout", "Shout", "shout.js"),)

            def websocket_routes(self):
                return {"/shout": self.shout}

            async def shout(self, websocket):
                async for message in websocket:
                    await websocket.send(str(message).upper())
    ''',
    "shout_lesson/shout.js": """
        // Served at lessons/shout/shout.js: the course's shared modules are at ../../static/.
        import { el } from "../../static/dom.js";
        import { wsUrl } from "../../static/socket.js";

        export default function mount(root) {
          const reply = el("output", { id: "shout-reply", text: "waiting" });
          const card = el("section", { class: "card" }, el("h1", { text: "Shout" }), reply);
          root.replaceChildren(card);
          const socket = new WebSocket(wsUrl("shout"));
          socket.onopen = () => socket.send("hello from the browser");
          socket.onmessage = (event) => { reply.textContent = event.data; };
          return () => socket.close();
        }
    """,
}

# Installed beside it: an entry point whose module does not exist.
BROKEN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "broken-lesson"
        version = "0.1"

        [project.entry-points."workshop_lib.lessons"]
        broken = "broken_lesson.missing:BrokenLesson"
    """,
    "broken_lesson/__init__.py": "",
}


def write_package(where: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return where


@pytest.fixture(scope="module")
def plugged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``serve`` from a fresh venv holding the course, the shout lesson and a broken one:
    its base URL and its log file."""
    made = tmp_path_factory.mktemp("plugins")
    wheels = [
        build_wheel(ROOT, made / "course"),
        build_wheel(write_package(made / "shout-src", SHOUT), made / "shout"),
        build_wheel(write_package(made / "broken-src", BROKEN), made / "broken"),
    ]
    python = fresh_venv(made / "venv", wheels)
    run_in = made / "run"  # outside the clone: nothing of the repository on the path
    run_in.mkdir()
    with serving(python, run_in) as (url, _):
        yield url, run_in / "serve.log"


def get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers.get("Content-Type", ""), response.read()


def test_an_outside_lesson_gets_its_route_page_and_place(plugged: tuple[str, Path]) -> None:
    url, _ = plugged
    pages = json.loads(get(url + "/api/pages")[1])
    names = [page["name"] for page in pages]
    assert names == ["echo", "ball", "chat", "realtime", "voice", "shout"]  # after the course's
    assert pages[-1] == {
        "name": "shout",
        "title": "Shout",
        "module": "shout.js",
        "url": "lessons/shout/shout.js",
    }
    content_type, body = get(f"{url}/lessons/shout/shout.js")
    assert content_type.startswith("text/javascript") and b"export default function mount" in body
    with connect(url.replace("http", "ws", 1) + "/shout", open_timeout=10) as websocket:
        websocket.send("hi")
        assert websocket.recv(timeout=10) == "HI"
    # Its package's Python is no browser file: not served.
    with pytest.raises(urllib.error.HTTPError, match="404"):
        get(f"{url}/lessons/shout/__init__.py")


def test_a_broken_plugin_is_left_out_with_one_line(plugged: tuple[str, Path]) -> None:
    url, log = plugged
    health = json.loads(get(url + "/healthz")[1])
    assert health["status"] == "ok" and "/shout" in health["routes"] and "/echo" in health["routes"]
    lines = [line for line in log.read_text().splitlines() if "'broken'" in line]
    assert len(lines) == 1, log.read_text()[-3000:]
    assert "broken_lesson.missing:BrokenLesson" in lines[0]
    assert "ModuleNotFoundError" in lines[0] and "pip uninstall broken-lesson" in lines[0]


def test_the_outside_page_mounts_from_the_navigation(plugged: tuple[str, Path], page: Page):
    url, _ = plugged
    page.goto(url + "/")
    nav = page.locator(".site-nav a")
    titles = ["Echo", "Bouncing ball", "Chat", "Realtime", "Voice", "Shout", "Room"]
    expect(nav).to_have_text(titles)
    page.locator('.site-nav a[data-page="shout"]').click()
    expect(page.locator("#shout-reply")).to_have_text("HELLO FROM THE BROWSER")
    expect(page.locator('.site-nav a[data-page="shout"]')).to_have_attribute("aria-current", "page")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "plugin-shout-page.png"))
    page.locator('.site-nav a[data-page="echo"]').click()  # and away again: it unmounts
    expect(page.locator("#shout-reply")).to_have_count(0)
    assert page.page_errors == []
