"""One source for the rules every client follows: protocol.py, mirrored for the browser.

``static/rules.js`` holds a copy for the browser client, and the ball's widget gets the
rules as a trait; the reconnect schedules of ``static/reconnect.js`` and ``ball/view.js``
are run in Node.js and compared with Python's ``backoff_delays()``.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from workshop_lib.ball.widgets import BallView
from workshop_lib.clients.backoff import backoff_delays
from workshop_lib.wire.protocol import BACKOFF, NO_RETRY, Close, client_rules

STATIC = ROOT / "static"
VIEW = ROOT / "workshop_lib" / "ball" / "view.js"
RANDOMS = (0.0, 0.5, 1.0)  # the jitter's two extremes (-20 %, +20 %) and its middle
ATTEMPTS = 9


def test_rules_js_holds_exactly_the_python_rules():
    text = (STATIC / "rules.js").read_text(encoding="utf-8")
    found = re.search(r"export const RULES = Object\.freeze\((\{.*?\})\);", text, re.DOTALL)
    assert found, "rules.js must define RULES = Object.freeze({...JSON...});"
    assert json.loads(found.group(1)) == client_rules()


def test_the_rules_say_what_the_course_decided():
    assert {int(c) for c in NO_RETRY} == {1000, 1008, 4001, 4029}
    assert Close.GOING_AWAY not in NO_RETRY and Close.INTERNAL not in NO_RETRY
    assert (BACKOFF.first, BACKOFF.cap) == (0.5, 10.0)


def test_the_ball_view_gets_the_rules_as_a_trait():
    assert BallView("ws://127.0.0.1:1/ball").rules == client_rules()


def node_delays() -> dict[str, list[list[float]]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js runs the browser's reconnect schedule here: apt-get install nodejs")
    script = f"""
        const reconnect = await import({json.dumps((STATIC / "reconnect.js").as_uri())});
        const view = await import({json.dumps(VIEW.as_uri())});
        const backoff = {json.dumps(client_rules()["backoff"])};
        const randoms = {json.dumps(RANDOMS)};
        const attempts = [...Array({ATTEMPTS}).keys()];
        console.log(JSON.stringify({{
          page: randoms.map((r) =>
            attempts.map((a) => reconnect.backoffDelay(a, {{ random: () => r }}))),
          widget: randoms.map((r) =>
            attempts.map((a) => view.backoffDelay(a, backoff, () => r))),
        }}));
    """
    result = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_browser_and_the_widget_wait_as_python_does():
    delays = node_delays()
    for r, page, widget in zip(RANDOMS, delays["page"], delays["widget"], strict=True):
        python = [
            d * 1000 for d in itertools.islice(backoff_delays(random=lambda r=r: r), ATTEMPTS)
        ]
        assert page == widget
        assert page == pytest.approx(python, abs=0.5)  # the browser rounds to whole ms
        assert max(page) <= BACKOFF.cap * 1000  # jitter never passes the cap
