"""The ball lesson's live displays: the canvas, and controls that steer the one ball.

    from workshop_lib.ball import BallControls, BallView
    BallView(server.links.ws("/ball"))        # a canvas that is itself a client of /ball
    BallControls(server.links.ws("/ball"))    # sliders and buttons -> ball.control / kick

Why anywidget: the canvas's JavaScript opens its own WebSocket to the server and draws
every frame in the browser, so 60 frames a second never pass through the kernel (an
ipywidgets ``Image`` or ``HTML`` updated from Python would send each frame over the
kernel's comm channel and stutter). The view reports frames, fps and delay back to the
kernel twice a second, so cells (and tests) can read what it really received: as widget
messages of its own, which ipywidgets never holds back (see view.js, report()).
"""

from __future__ import annotations

import functools
import html
import math
import random
import threading
import time
from pathlib import Path

import anywidget
import ipywidgets as widgets
import traitlets

from ..app.links import browser_ws
from ..app.shell import static_folder
from ..progress.banner import with_banner
from .bundle import bundle
from .client import BallClient
from .model import MAX_KICK, MAX_SPEED, RADIUS_RANGE

__all__ = ["BallControls", "BallView"]


class BallView(anywidget.AnyWidget):
    """A live canvas of the ball, drawn from its own WebSocket connection to ``url``.

    ``frames``, ``fps``, ``delay_ms``, ``tick`` and ``connected`` are reported by the
    front end (twice a second); without a front end (nbval, a console) they stay at 0.
    They are plain traits, set from the view's report messages (observe them as usual):
    only the kernel reads them, so nothing is synced back to the browser.
    """

    # The front end: view.js with the page's drawing and reconnect schedule written in
    # (view_module()), built when the first view is made, not when this module is imported.
    _esm = traitlets.Unicode().tag(sync=True)
    url = traitlets.Unicode().tag(sync=True)
    # The kernel's answer to "where does a browser reach url?" (links.browser_ws; "" for
    # direct); the view decides from the page it is on (view.js, socketAddress).
    browser_url = traitlets.Unicode("").tag(sync=True)
    token = traitlets.Unicode("").tag(sync=True)  # sent as the first message, if set
    size = traitlets.Int(320).tag(sync=True)
    frames = traitlets.Int(0)
    fps = traitlets.Float(0)
    delay_ms = traitlets.Float(-1)
    tick = traitlets.Int(-1)
    connected = traitlets.Bool(False)

    def __init__(self, url: str, size: int = 320, *, token: str | None = None) -> None:
        super().__init__(
            url=url,
            browser_url=browser_ws(url),
            size=size,
            token=token or "",
        )
        self.on_msg(lambda _widget, content, _buffers: self.handle_report(content))

    @traitlets.default("_esm")
    def _default_esm(self) -> str:
        return view_module()

    def handle_report(self, content: object) -> bool:
        """Take one report of the front end (``{"type": "report", "frames": ..., ...}``);
        returns whether it was one. Fields of the wrong type are left as they were: the
        kernel never raises over what a browser sent."""
        if not isinstance(content, dict) or content.get("type") != "report":
            return False
        values = {
            name: kind(content[name])
            for name, kind in _REPORTED.items()
            if _is(content.get(name), kind)
        }
        # All at once: an observer of `frames` sees the fps and delay of the same report.
        with self.hold_trait_notifications():
            for name, value in values.items():
                setattr(self, name, value)
        return True


class BallControls(widgets.VBox):
    """Speed, radius, colour, pause and kick: each change goes to the server as an event,
    and the controls show the server's state: what anyone (a browser tab, a cell's code)
    set last, not only what was set here.

    Holds a :class:`BallClient`, which also keeps reading the stream (a connection that
    stopped reading would make the server skip it, and make closing it slow).
    """

    # After a change here, the server's older frames (still on their way) would move the
    # control back under the learner's hand: show the server's value again after this long.
    HOLD_SECONDS = 0.5

    def __init__(self, url: str, *, token: str | None = None) -> None:
        self.client = BallClient(url, token=token, reconnect=True)
        state = self.client.wait_for_frame()
        style = {"description_width": "5em"}
        self.speed = widgets.FloatSlider(
            value=_speed(state),
            min=0,
            max=MAX_SPEED,
            step=0.05,
            description="speed",
            style=style,
        )
        self.radius = widgets.FloatSlider(
            value=state["radius"],
            min=RADIUS_RANGE[0],
            max=RADIUS_RANGE[1],
            step=0.01,
            description="radius",
            style=style,
        )
        self.color = widgets.ColorPicker(value=state["color"], description="colour", style=style)
        self.pause = widgets.ToggleButton(value=state["paused"], description="pause", icon="pause")
        self.kick_button = widgets.Button(description="kick", icon="bolt")
        self.status = widgets.HTML()
        self._fields = {
            "speed": self.speed,
            "radius": self.radius,
            "color": self.color,
            "paused": self.pause,
        }
        self._held: dict[str, float] = {}  # field -> until when the server's value waits
        self._showing_server = threading.local()  # set while a value comes from the server
        for name, control in self._fields.items():
            control.observe(lambda c, name=name: self._changed(name, c["new"]), names="value")
        self.kick_button.on_click(lambda _b: self.kick())
        super().__init__(
            with_banner(
                [
                    self.speed,
                    self.radius,
                    self.color,
                    widgets.HBox([self.pause, self.kick_button]),
                    self.status,
                ]
            )
        )
        self.add_class("workshop-ball-controls")
        self.client.on_state = self._show_state

    def _changed(self, name: str, value: object) -> None:
        if getattr(self._showing_server, "active", False):
            return  # the server's own state, shown: nothing to send back
        self._held[name] = time.monotonic() + self.HOLD_SECONDS
        self.client.control(**{name: value})
        self.status.value = f"sent <code>ball.control</code> {name}={html.escape(repr(value))}"

    def _show_state(self, state: dict) -> None:
        """Set each control to the server's state (reader thread: ipywidgets allows setting
        values from any thread; unchanged values send nothing to the front end)."""
        values = {
            "speed": _speed(state),
            "radius": round(state["radius"], 2),
            "color": state["color"],
            "paused": state["paused"],
        }
        now = time.monotonic()
        self._showing_server.active = True
        try:
            for name, value in values.items():
                if self._held.get(name, 0) <= now and self._fields[name].value != value:
                    self._fields[name].value = value
        finally:
            self._showing_server.active = False

    def kick(self, dx: float | None = None, dy: float | None = None) -> None:
        """Kick the ball (random direction when dx/dy are not given)."""
        dx = random.uniform(-1, 1) if dx is None else max(-MAX_KICK, min(MAX_KICK, dx))
        dy = random.uniform(-1, 1) if dy is None else max(-MAX_KICK, min(MAX_KICK, dy))
        self.client.kick(dx, dy)
        self.status.value = f"sent <code>ball.kick</code> dx={dx:.2f}, dy={dy:.2f}"

    def close(self) -> None:
        """Close the connection and the widgets."""
        self.client.on_state = None
        self.client.close()
        super().close()


@functools.cache
def view_module() -> str:
    """The view's front end as one module: ``view.js`` with the files it imports
    (``canvas.js``, the shell's ``reconnect.js`` and ``rules.js``) written in, as the page
    uses them."""
    return bundle(
        "/lessons/ball/view.js",
        {"/lessons/ball/": Path(__file__).parent, "/static/": static_folder()},
    )


# What a report holds, and the type each field is kept as.
_REPORTED: dict[str, type] = {
    "frames": int,
    "fps": float,
    "delay_ms": float,
    "tick": int,
    "connected": bool,
}


def _is(value: object, kind: type) -> bool:
    """Whether a reported ``value`` (decoded JSON) fits a field kept as ``kind``: JSON has
    one number type, so a float field takes any finite number and an int field a whole one."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not math.isfinite(value):
        return False
    return kind is float or float(value).is_integer()


def _speed(state: dict) -> float:
    # On a step of the slider: the front end would snap any other value and send the
    # snapped one back, which would set a speed nobody chose.
    return round(math.hypot(state["vx"], state["vy"]) * 20) / 20
