"""A notebook joined to a room: the learner's widget joins under the learner's name, and the
notebook's scripted people (linus, the bot, the latecomer, the talkers) stay on the
learner's own server. Run in a real kernel whose environment names the room, as in class.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOM_TOKEN
from tests.helpers import wait_until
from tests.kernel import NOTEBOOKS, Kernel, assert_ok, cell
from workshop_lib.chat import ChatClient
from workshop_lib.notebook.names import display_name, name_file, remember_name

# 03's demo cells, in order, up to its exercises (the rude ones, sections 7 and 8, start
# a private server of their own by design and take time).
DEMOS_03 = [
    "me = ChatWidget(",
    "Markdown(",
    'linus = ChatClient(server.links.ws("/chat"), "linus"',
    '"I am the second linus"',
    '"can I talk yet?"',
    'bot = ChatBot(server.links.ws("/chat"), "bot"',
    '"latecomer"',
    'f"talker {i}"',
]


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Jupyter runtime directory of the test's own, where 00 keeps the name."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("WORKSHOP_NAME", raising=False)
    return tmp_path / "runtime"


@pytest.fixture
def learner(room, runtime_dir: Path) -> Iterator[Kernel]:
    """A kernel joined to the room, as a learner's is in class (no WORKSHOP_NAME)."""
    env = {
        "WORKSHOP_SERVER": room.http_url,
        "WORKSHOP_TOKEN": ROOM_TOKEN,
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
    }
    with Kernel(NOTEBOOKS, env=env) as kernel:
        yield kernel


def test_03_in_a_room_puts_only_the_learners_name_in_the_rooms_chat(room, learner) -> None:
    # 00: the learner types a name and presses Save (the widget's own click handler).
    saved = learner.run(
        cell("00-setup-check.ipynb", "NameBox()").replace(
            "NameBox()", 'box = NameBox()\nbox.text.value = "ada lovelace"\nbox.save_button.click()'
        )
    )
    assert_ok(saved)
    with ChatClient(room.links.ws("/chat"), "projector", token=ROOM_TOKEN) as projector:
        for text in DEMOS_03:
            assert_ok(learner.run(cell("03-chat-room.ipynb", text)))
        assert "ada lovelace" in learner.run("print(me.client.you)").shown
        assert wait_until(lambda: "ada lovelace" in projector.users)
        assert_ok(learner.run("bot.close(); linus.close(); me.close(); server.stop()"))
        assert wait_until(lambda: "ada lovelace" not in projector.users)
        joined = {e["name"] for e in projector.events if e["type"] == "chat.joined"}
    assert joined - {"projector"} == {"ada lovelace"}, joined
    assert list(room.lesson("chat").room.history) == []  # no scripted message reached the room


def test_the_name_comes_from_the_environment_then_from_00(runtime_dir, monkeypatch) -> None:
    assert display_name("me") == "me"
    assert remember_name("  grace  ") == "grace"
    assert name_file().parent == runtime_dir and display_name("me") == "grace"
    monkeypatch.setenv("WORKSHOP_NAME", "ada")
    assert display_name("me") == "ada"
    with pytest.raises(ValueError, match="1 to 32 characters"):
        remember_name("x" * 33)
    assert os.environ["WORKSHOP_NAME"] == "ada"
