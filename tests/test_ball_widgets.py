"""The ball lesson's Python side: BallClient, the controls, the view's traits.

Push against polling, SSE and long polling: tests/test_ball_compare.py.

That the canvas renders and animates in JupyterLab is tested in tests/test_jupyterlab.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.helpers import wait_for
from workshop_lib.ball.client import BallClient
from workshop_lib.ball.widgets import BallControls, BallView, view_module

BALL = ROOT / "workshop_lib" / "ball"
STATIC = ROOT / "static"


def test_ball_client_keeps_the_latest_frame_and_measures(server):
    with BallClient(server.links.ws("/ball")) as client:
        first = client.wait_for_frame()
        # A full second of frames counted (on a busy machine that takes a little longer).
        wait_for(lambda: 50 <= client.stats()["fps"] <= 62, timeout=10)
        stats = client.stats()
        assert client.latest["tick"] > first["tick"]
        assert 0 <= stats["delay_ms"] < 100
        client.send({"type": "ball.teleport"})
        wait_for(lambda: client.errors)
        assert client.errors[-1]["code"] == "unknown_type"
        assert client.connected
    assert not client.connected


def test_controls_steer_the_ball_for_every_client(server):
    controls = BallControls(server.links.ws("/ball"))
    with BallClient(server.links.ws("/ball")) as other:
        other.wait_for_frame()
        try:
            controls.color.value = "#00aa00"  # what a change in the colour picker does
            controls.radius.value = 0.12
            controls.pause.value = True
            wait_for(lambda: other.latest["paused"] and other.latest["color"] == "#00aa00")
            assert other.latest["radius"] == 0.12
            assert "paused=True" in controls.status.value
            vx = server.lesson("ball").state.vx
            controls.kick(0.5, 0.25)
            wait_for(lambda: other.latest["vx"] == pytest.approx(vx + 0.5))
            controls.speed.value = 1.5
            wait_for(
                lambda: other.latest["vx"] ** 2 + other.latest["vy"] ** 2 == pytest.approx(2.25)
            )
        finally:
            controls.close()
    assert not controls.client.connected


def test_ball_view_points_at_the_stream_and_ships_its_javascript(server):
    view = BallView(server.links.ws("/ball"), size=200)
    assert view.url == server.links.ws("/ball") and view.size == 200
    assert (view.frames, view.connected) == (0, False)  # only a front end reports
    assert view._esm == view_module()  # what the front end loads: the state it is sent
    assert "new WebSocket" in view_module() and "export default" in view_module()
    view.close()


def _declaration(text: str, name: str) -> str:
    """``function name(...) {...}`` as ``text`` writes it (up to its closing brace)."""
    start = text.index(f"function {name}(")
    return text[start : text.index("\n}\n", start) + 2]


def test_the_view_draws_and_reconnects_with_the_pages_own_code():
    """The widget's module holds the page's drawing (canvas.js) and reconnect schedule
    (reconnect.js) to the letter, once; view.js has no drawing or backoff of its own that
    could drift from the page's."""
    module = view_module()
    shared = {
        BALL / "canvas.js": ("fitCanvas", "drawField"),
        STATIC / "reconnect.js": ("backoffDelay",),
    }
    for file, names in shared.items():
        text = file.read_text(encoding="utf-8")
        for name in names:
            assert _declaration(text, name) in module, f"{file.name}'s {name}"
            assert module.count(f"function {name}(") == 1, name
    view = (BALL / "view.js").read_text(encoding="utf-8")
    for own in ("getContext", ".arc(", "Math.random", ".factor"):
        assert own not in view, own
    assert "drawField(canvas" in view and "backoffDelay(attempt" in view


def _report(view, content) -> None:
    """What view.js sends the kernel twice a second: a custom widget message."""
    view._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def test_ball_view_takes_its_reports_as_messages_and_syncs_nothing_back(server):
    view = BallView(server.links.ws("/ball"))
    seen = []
    view.observe(lambda _c: seen.append((view.frames, view.fps, view.delay_ms)), names="frames")
    try:
        report = {"frames": 120, "fps": 60, "delay_ms": 1.5, "tick": 4321, "connected": True}
        _report(view, {"type": "report", **report})
        assert (view.frames, view.fps, view.delay_ms, view.tick, view.connected) == (
            120, 60.0, 1.5, 4321, True
        )  # fmt: skip
        # An observer of frames (the lesson's "view reports" line) sees the same report's fps.
        assert seen == [(120, 60.0, 1.5)]
        # State the browser would have to send back (and be held back by ipywidgets): none.
        assert not {"frames", "fps", "delay_ms", "tick", "connected"} & set(view.keys)
        # A malformed report changes nothing it cannot read, and raises nothing.
        _report(view, {"type": "report", "frames": "many", "fps": float("nan"), "tick": 1.5,
                       "connected": 1, "delay_ms": None})  # fmt: skip
        _report(view, {"type": "something else", "frames": 7})
        _report(view, ["not", "a", "report"])
        assert (view.frames, view.fps, view.delay_ms, view.tick, view.connected) == (
            120, 60.0, 1.5, 4321, True
        )  # fmt: skip
        _report(view, {"type": "report", "frames": 150, "connected": False})
        assert (view.frames, view.connected, view.tick) == (150, False, 4321)
    finally:
        view.close()


def test_controls_show_the_servers_state_whoever_set_it(server):
    controls = BallControls(server.links.ws("/ball"))
    try:
        with BallClient(server.links.ws("/ball")) as someone_else:
            someone_else.wait_for_frame()
            someone_else.control(color="#1f77b4", radius=0.08, paused=True)
            wait_for(lambda: (controls.color.value, controls.radius.value) == ("#1f77b4", 0.08))
            wait_for(lambda: controls.pause.value is True)
        # Showing the server's state sends nothing back: the status still says nothing sent.
        assert controls.status.value == ""
        # A change made here is not moved back by frames that were already on their way.
        controls.radius.value = 0.15
        wait_for(lambda: server.lesson("ball").state.radius == 0.15)
        assert controls.radius.value == 0.15
    finally:
        controls.close()
