"""Fixtures of the browser tests: a real Chromium (Debian's, through Playwright) and pages.

Everything in this folder drives a browser or runs whole notebooks; the fast loop leaves it out:
``pytest tests --ignore=tests/browser``.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import ARTIFACTS

# Flags this machine's closed network needs: without the background-networking ones,
# Chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    """Path of a Chromium or Chrome binary, or None."""
    explicit = os.environ.get("WORKSHOP_CHROMIUM")
    if explicit:
        return explicit if os.path.isfile(explicit) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by Playwright, for one test module.

    Per module, not per session: while Playwright's sync API runs, its event loop holds this
    thread, where no test can then call ``asyncio.run()``; the suite's workers (pytest-xdist)
    run fast tests after browser modules, so each module's Playwright stops when it ends.

    Skips with the reason where no Chromium (or Playwright) is found, and fails instead
    when WORKSHOP_REQUIRE_BROWSER=1, as CI sets it: a green run must have used a browser.
    """
    required = os.environ.get("WORKSHOP_REQUIRE_BROWSER") == "1"

    def unavailable(reason: str):
        if required:
            pytest.fail(f"{reason}, and WORKSHOP_REQUIRE_BROWSER=1 requires a browser")
        pytest.skip(reason)

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install -r requirements.txt)")
    executable = find_chromium()
    if executable is None:
        unavailable(
            "no Chromium found (Debian/Ubuntu: apt-get install chromium; "
            "or set WORKSHOP_CHROMIUM to the path of a Chrome/Chromium binary)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser page; its screenshot is saved in test-artifacts/ after the test."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.page_errors = errors  # tests assert that no script error happened
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        finally:
            context.close()
