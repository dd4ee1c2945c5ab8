"""Shared fixtures: a real server on port 0. Chromium's are in tests/browser/conftest.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from workshop_lib import WorkshopServer, start_server
from workshop_lib.realtime.server import RealtimeLesson

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"  # screenshots a person can look at after a run

# Run in a JupyterHub terminal, the tests would inherit the hub's prefix and every link
# would be proxied; they expect direct links unless a test sets a hub up itself
# (tests/test_links.py, tests/browser/test_hub.py).
for _variable in ("JUPYTERHUB_SERVICE_PREFIX", "WORKSHOP_PUBLIC_URL"):
    os.environ.pop(_variable, None)


@pytest.fixture
def server() -> Iterator[WorkshopServer]:
    """A workshop server on a free port, stopped after the test."""
    with start_server(port=0, name=f"test-{uuid.uuid4().hex[:8]}") as running:
        yield running


# The room's shared server, for tests of notebooks that join it.
ROOM_TOKEN = "room-token-for-tests"


@pytest.fixture
def room() -> Iterator[WorkshopServer]:
    """The instructor's server (a token, as any server for a room has)."""
    with start_server(port=0, name=f"room-{uuid.uuid4().hex[:8]}", token=ROOM_TOKEN) as running:
        yield running


@pytest.fixture
def realtime() -> Iterator[WorkshopServer]:
    """A server running only the Realtime lesson, streaming without a pause between deltas."""
    with start_server(port=0, lessons=[RealtimeLesson(delay=0)]) as running:
        yield running


@pytest.fixture
def in_the_room(room, monkeypatch) -> WorkshopServer:
    monkeypatch.setenv("WORKSHOP_SERVER", room.http_url)
    monkeypatch.setenv("WORKSHOP_TOKEN", ROOM_TOKEN)
    return room


# Tests that must share one pytest-xdist worker, run in order there: each JupyterLab's tests
# (the local one's notebooks, and the hub's: a JupyterLab and its kernels per worker would
# fight over two cores), and the package test, whose wheel and fresh venv are built once per
# worker that runs any of it. Every other test is a unit of its own. (xdist's own marks,
# --dist loadgroup, do nothing under pytest 9: xdist renames node ids through an attribute
# that pytest 9 no longer reads.)
WORKER_GROUPS = {
    "tests/browser/test_jupyterlab": "jupyterlab",  # test_jupyterlab*.py
    "tests/browser/test_hub.py": "hub",
    "tests/test_package.py": "package",
    "tests/browser/test_plugin_lesson.py": "package",  # wheels and a fresh venv too
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Schedule by WORKER_GROUPS: the biggest group (JupyterLab, the longest) starts first."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            for prefix, group in WORKER_GROUPS.items():
                if nodeid.startswith(prefix):
                    return group
            return nodeid

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first, browser tests last: a failure shows within a minute, and no fast
    test runs while Playwright's session loop is running in this thread (asyncio.run()
    refuses to start there)."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/browser/"))  # a stable sort


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server of the tests' own (Debian's package), for the whole session.

    Without one the Redis tests skip, saying how to install it, unless
    ``WORKSHOP_REQUIRE_REDIS=1`` (CI sets it): then they fail instead.
    """
    from workshop_lib.redis.local import LocalRedis, RedisMissing

    try:
        server = LocalRedis().start()
    except RedisMissing as missing:
        if os.environ.get("WORKSHOP_REQUIRE_REDIS") == "1":
            pytest.fail(f"WORKSHOP_REQUIRE_REDIS=1 but {missing}")
        pytest.skip(str(missing))
    try:
        yield server.url
    finally:
        server.stop()
