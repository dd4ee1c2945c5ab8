"""Shared fixtures: a real server on port 0. Chromium's are in tests/browser/conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from workshop_lib import WorkshopServer, start_server

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"  # screenshots a person can look at after a run


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
def in_the_room(room, monkeypatch) -> WorkshopServer:
    monkeypatch.setenv("WORKSHOP_SERVER", room.http_url)
    monkeypatch.setenv("WORKSHOP_TOKEN", ROOM_TOKEN)
    return room


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first, browser tests last: a failure shows within a minute, and no fast
    test runs while Playwright's session loop is running in this thread (asyncio.run()
    refuses to start there)."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/browser/"))  # a stable sort
