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
