"""Browser tests skip with a reason without Chromium, and fail instead when CI requires one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_browser_test(require: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKSHOP_CHROMIUM": "/nonexistent/chromium"}
    env.pop("WORKSHOP_REQUIRE_BROWSER", None)
    if require:
        env["WORKSHOP_REQUIRE_BROWSER"] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-n",
            "0",  # one test: no xdist workers
            "-p",
            "no:cacheprovider",
            "tests/browser/test_echo.py::test_echo_round_trip_shows_reply_and_rtt",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_chromium_browser_tests_skip_with_the_reason():
    result = run_browser_test(require=False)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 skipped" in result.stdout
    assert "no Chromium found" in result.stdout and "apt-get install chromium" in result.stdout


def test_with_workshop_require_browser_they_fail_instead():
    result = run_browser_test(require=True)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "WORKSHOP_REQUIRE_BROWSER=1 requires a browser" in result.stdout
