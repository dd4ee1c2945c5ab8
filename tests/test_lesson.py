"""A lesson is a plug-in: a server runs whatever lessons it is given, and the core names none."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import Mapping

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.sync.client import connect

from workshop_lib import start_server
from workshop_lib.course import default_lessons, lesson_names
from workshop_lib.lesson import Handler, JsonRoute, Lesson, Page


class ShoutLesson(Lesson):
    """A lesson the core has never heard of: a route, an endpoint, a lifecycle, counts."""

    name = "shout"
    pages = (Page("shout", "Shout", "echo.js"),)
    package = "workshop_lib.echo"  # the echo's page: this module is in no lesson's package

    def __init__(self, suffix: str = "!") -> None:
        self.suffix = suffix
        self.shouted = 0
        self.events: list[str] = []

    def websocket_routes(self) -> Mapping[str, Handler]:
        return {"/shout": self.handler}

    def http_routes(self) -> Mapping[str, JsonRoute]:
        return {"/api/shout": lambda: {"suffix": self.suffix}}

    async def start(self) -> None:
        self.events.append(f"start on {asyncio.get_running_loop()!r}")

    async def stop(self) -> None:
        self.events.append("stop")

    def stats(self) -> dict[str, object]:
        return {"shouted": self.shouted}

    async def handler(self, websocket: ServerConnection) -> None:
        async for message in websocket:
            self.shouted += 1
            await websocket.send(str(message).upper() + self.suffix)


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_a_new_lesson_plugs_in_with_its_routes_page_counts_and_lifecycle():
    shout = ShoutLesson(suffix="!!")
    with start_server(port=0, name=f"t-{uuid.uuid4().hex[:6]}", lessons=[shout]) as server:
        assert shout.events and shout.events[0].startswith("start")
        with connect(server.links.ws("/shout")) as websocket:
            websocket.send("hi")
            assert websocket.recv(timeout=5) == "HI!!"
        assert get_json(server.links.url("/api/shout")) == {"suffix": "!!"}
        assert get_json(server.links.url("/api/pages")) == [
            {"name": "shout", "title": "Shout", "module": "echo.js", "url": "lessons/shout/echo.js"}
        ]
        assert get_json(server.links.url("/api/stats"))["shout"] == {"shouted": 1}
        assert server.lesson("shout") is shout
        assert server.links.page("shout").endswith("/#shout")
        with pytest.raises(KeyError, match="runs no lesson 'ball'; it runs shout"):
            server.lesson("ball")
        # Only the lessons it was given: no ball, no chat.
        with pytest.raises(Exception, match="404"):
            connect(server.links.ws("/ball"), open_timeout=5).__enter__()
    assert shout.events[-1] == "stop"


def test_two_lessons_cannot_claim_one_path():
    class Impostor(ShoutLesson):
        name = "impostor"

    with pytest.raises(ValueError, match="wants /shout, which another route already serves"):
        start_server(port=0, name=f"t-{uuid.uuid4().hex[:6]}", lessons=[ShoutLesson(), Impostor()])


def test_the_course_gives_each_lesson_its_own_settings():
    lessons = {lesson.name: lesson for lesson in default_lessons(ball={"rate": 25})}
    assert list(lessons) == lesson_names() == ["echo", "ball", "chat", "realtime"]
    assert lessons["ball"].rate == 25
    with pytest.raises(ValueError, match="no lesson called 'bal'; the lessons are echo, ball"):
        default_lessons(bal={"rate": 25})
