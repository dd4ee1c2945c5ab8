"""The ball page fits a 900-pixel-high window: both canvases and all their numbers in view
(the notes below them may need a scroll)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("height", [900, 1200])
def test_the_ball_page_fits_the_window(server, browser, height):
    context = browser.new_context(viewport={"width": 1200, "height": height})
    page = context.new_page()
    try:
        page.goto(server.http_url + "/#ball")
        page.locator("#ball-poll-tick").wait_for()
        page.wait_for_function(
            "() => document.querySelector('#ball-push-tick').textContent !== '–'"
        )
        page.screenshot(path=str(ARTIFACTS / f"ball-page-{height}.png"))
        for side in ("push", "poll"):
            canvas = page.locator(f"#ball-{side}-canvas").bounding_box()
            last = page.locator(f"#ball-{side}-tick").bounding_box()
            assert canvas["height"] >= 190, canvas  # still a canvas worth looking at
            assert last["y"] + last["height"] <= height, (side, last)
    finally:
        context.close()
