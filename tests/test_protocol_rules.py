"""One source for the rules every client follows: protocol.py, mirrored for the browser.

``static/rules.js`` holds a copy for the browser client, and the ball's widget runs that
file too (written into its module: tests/test_ball_widgets.py); the reconnect schedule of
``static/reconnect.js`` is run in Node.js and compared with Python's ``backoff_delays()``.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from workshop_lib.ball.widgets import view_module
from workshop_lib.clients.backoff import backoff_delays
from workshop_lib.wire.protocol import BACKOFF, NO_RETRY, Close, client_rules

STATIC = ROOT / "static"
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


def test_the_ball_view_follows_the_same_rules_file():
    rules = (STATIC / "rules.js").read_text(encoding="utf-8")
    start = rules.index("export const RULES")
    frozen = rules[start : rules.index("});", start) + 3].removeprefix("export ")
    assert frozen in view_module()


def node_delays() -> list[list[float]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js runs the browser's reconnect schedule here: apt-get install nodejs")
    script = f"""
        const reconnect = await import({json.dumps((STATIC / "reconnect.js").as_uri())});
        const randoms = {json.dumps(RANDOMS)};
        const attempts = [...Array({ATTEMPTS}).keys()];
        console.log(JSON.stringify(randoms.map((r) =>
          attempts.map((a) => reconnect.backoffDelay(a, {{ random: () => r }})))));
    """
    result = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_browser_waits_as_python_does():
    for r, page in zip(RANDOMS, node_delays(), strict=True):
        python = [
            d * 1000 for d in itertools.islice(backoff_delays(random=lambda r=r: r), ATTEMPTS)
        ]
        assert page == pytest.approx(python, abs=0.5)  # the browser rounds to whole ms
        assert max(page) <= BACKOFF.cap * 1000  # jitter never passes the cap
