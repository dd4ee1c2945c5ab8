"""Exercises of notebook 03 (the chat room): a bot's reply function; messages per user.

from workshop_lib.checks.chat import q1, q2, ____
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

from ..chat.client import ChatBot, ChatClient
from ..chat.server import ChatLesson
from ._base import CheckResult, Exercise, Failed, ____, scratch_server

__all__ = ["____", "q1", "q2"]


class BotReply(Exercise):
    """q1: ``reply(text, sender, users)`` for ``!hello``, ``!users`` and ``!time``."""

    hint_text = (
        'compare `text` with each command: `if text == "!hello": return f"hello, {sender}!"`; '
        '`", ".join(users)` for !users; `time.strftime("%H:%M:%S")` for !time; '
        "and `return None` for anything else."
    )
    solution_file = "03_bot.py"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        users = ["ada", "bob", "bot"]
        cases = [
            ("!hello", "ada", "hello, ada!"),
            ("!users", "bob", "ada, bob, bot"),
            ("hello everyone", "ada", None),
            ("!nope", "ada", None),
        ]
        for text, sender, expected in cases:
            got = answer(text, sender, list(users))
            if got != expected:
                return CheckResult(
                    False,
                    f"for {text!r} from {sender!r} the reply should be {expected!r}, not {got!r}",
                )
        now = answer("!time", "ada", users)
        try:
            told = time.strptime(str(now), "%H:%M:%S")
        except ValueError:
            return CheckResult(False, f'!time should answer like "14:05:09", not {now!r}')
        wall = time.localtime()
        drift = abs(
            (told.tm_hour * 3600 + told.tm_min * 60 + told.tm_sec)
            - (wall.tm_hour * 3600 + wall.tm_min * 60 + wall.tm_sec)
        )
        if min(drift, 86400 - drift) > 5:
            return CheckResult(
                False, f"!time answered {now}, but the time is {time.strftime('%H:%M:%S')}"
            )
        return self._live(answer)

    def _live(self, answer: Callable[..., Any]) -> CheckResult:
        """The same function as a bot in a real room."""
        with scratch_server(lessons=[ChatLesson()]) as server:
            url = server.links.ws("/chat")
            with ChatBot(url, "bot", answer), ChatClient(url, "ada") as ada:
                ada.send("!hello")
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    if any(m["from"] == "bot" for m in ada.messages):
                        break
                    time.sleep(0.02)
                replies = [m["text"] for m in ada.messages if m["from"] == "bot"]
        if replies != ["hello, ada!"]:
            return CheckResult(False, f"in a real room the bot answered {replies!r}")
        return CheckResult(
            True,
            "your bot answers !hello, !users and !time, stays quiet "
            "otherwise, and works in a real room",
        )


class MessageCounter(Exercise):
    """q2: a client coroutine that counts chat messages per sender for ``seconds``."""

    hint_text = (
        'join first (`{"type": "chat.join", "name": "counter"}`), then for each message '
        'whose "type" is "chat.message", add one to counts[event["from"]]; stop when '
        "`time.perf_counter() - start >= seconds` (use `asyncio.wait_for` or `recv()` with a "
        "timeout, so a quiet room cannot keep you waiting)."
    )
    solution_file = "03_count_messages.py"
    answer_name = "count_messages"
    posts = (("ada", 3), ("bob", 2), ("cy", 1))
    seconds = 3.0

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        total = sum(n for _, n in self.posts)
        with scratch_server(lessons=[ChatLesson()]) as server:
            url = server.links.ws("/chat")
            pool = concurrent.futures.ThreadPoolExecutor(1, "check-runner")
            started = time.monotonic()
            try:
                # Listening for 3 s, and 2 more: a loop that never stops costs 5 s, not 15.
                timeout = self.seconds + 2
                counted = pool.submit(self.run, answer, url, self.seconds, timeout=timeout)
                if not self._wait_for_listener(server):
                    return CheckResult(
                        False, "count_messages never joined the room: send chat.join first"
                    )
                clients = [ChatClient(url, name) for name, _ in self.posts]
                try:
                    for client, (_, n) in zip(clients, self.posts, strict=True):
                        for i in range(n):
                            client.send(f"message {i + 1} from {client.you}")
                    quiet_after = time.monotonic() - started
                    try:
                        counts = counted.result()  # self.run() gives up after `timeout`
                    except Failed:
                        still_there = "counter" in server.lesson("chat").members
                        raise Failed(
                            f"the room went quiet after {quiet_after:.1f} s (all {total} "
                            f"messages sent), and at {timeout:g} s your count_messages "
                            + (
                                "was still waiting for a message: check the clock outside "
                                "`async for` (a loop that only looks at the time when a "
                                "message comes waits forever in a quiet room), or give "
                                "`recv()` a timeout"
                                if still_there
                                else "had left the room but not returned"
                            )
                        ) from None
                finally:
                    for client in clients:
                        client.close()
            finally:
                pool.shutdown(wait=False)
        expected = dict(self.posts)
        if not isinstance(counts, dict):
            return CheckResult(False, f"return a dict of name -> count, not {counts!r}")
        if {k: v for k, v in counts.items() if v} != expected:
            return CheckResult(False, f"the room saw {expected}, you counted {counts}")
        return CheckResult(True, f"counted {expected} from the live stream")

    @staticmethod
    def _wait_for_listener(server: Any) -> bool:
        deadline = time.monotonic() + 3  # a join takes milliseconds, even on a busy machine
        while time.monotonic() < deadline:
            if server.lesson("chat").members:
                return True
            time.sleep(0.02)
        return False


q1 = BotReply("q1")
q2 = MessageCounter("q2")
