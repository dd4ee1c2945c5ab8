"""Lessons 02 and 03 top to bottom against a room's server, as learners run them in a class.

Slow (whole notebooks, about a minute), so it lives beside the browser tests, out of the
fast loop.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from tests.browser.jupyterlab import NOTEBOOKS


@pytest.mark.parametrize(
    ("notebook", "expected"),
    [("03-chat-room.ipynb", {"linus", "bot"}), ("02-bouncing-ball.ipynb", set())],
)
def test_a_lesson_notebook_runs_against_the_rooms_server(in_the_room, notebook, expected):
    """The whole notebook, top to bottom, with the environment an instructor hands out:
    its shared parts join the room, its rude experiments stay on a private lab server."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    served = in_the_room.app.served
    assert served["/ball" if notebook.startswith("02") else "/chat"] >= 3
    posted = [m["from"] for m in in_the_room.lesson("chat").room.history]
    assert expected <= set(posted), posted
    # The flood and the sleepy client never reached the room.
    assert not {"chatterbox", "sleepy", "spammer"} & set(posted)
    assert json.dumps(in_the_room.app._stats())  # and the room's server is still serving
