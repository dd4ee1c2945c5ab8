"""Exercises of notebook 03 (the chat room): a bot's reply function; messages per user;
the chat server's handler.

from workshop_lib.checks.chat import q1, q2, q3, ____
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Callable
from typing import Any

from ..chat.client import ChatBot, ChatClient
from ..chat.server import ChatLesson
from ..clients.proxies import proxy_for
from ._base import (
    CheckResult,
    Exercise,
    Failed,
    ____,
    scratch_server,
    start_coroutine,
    wait_until,
)

__all__ = ["____", "q1", "q2", "q3"]


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
                wait_until(lambda: any(m["from"] == "bot" for m in ada.messages), 3, 0.02)
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
        "`time.perf_counter() - start >= seconds`. A quiet room sends nothing, so wait for "
        "each message with a timeout: `await asyncio.wait_for(websocket.recv(), left)` "
        "raises TimeoutError when `left` seconds pass (the asyncio client's `recv()` "
        "takes no timeout of its own)."
    )
    solution_file = "03_count_messages.py"
    answer_name = "count_messages"
    posts = (("ada", 3), ("bob", 2), ("cy", 1))
    seconds = 3.0

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        total = sum(n for _, n in self.posts)
        with scratch_server(lessons=[ChatLesson()]) as server:
            url = server.links.ws("/chat")
            started = time.monotonic()
            # Listening for 3 s, and 2 more: a loop that never stops costs 5 s, not 15.
            timeout = self.seconds + 2
            counted = start_coroutine(answer(url, self.seconds))
            if not self._wait_for_listener(server, counted):
                if counted.done():
                    counted.result()  # what the learner's code raised comes first
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
                    counts = counted.result(max(0.0, started + timeout - time.monotonic()))
                except concurrent.futures.TimeoutError:
                    still_there = "counter" in server.lesson("chat").members
                    raise Failed(
                        f"the room went quiet after {quiet_after:.1f} s (all {total} "
                        f"messages sent), and at {timeout:g} s your count_messages "
                        + (
                            "was still waiting for a message: check the clock outside "
                            "`async for` (a loop that only looks at the time when a "
                            "message comes waits forever in a quiet room), or wait with "
                            "a timeout: `await asyncio.wait_for(websocket.recv(), left)`"
                            if still_there
                            else "had left the room but not returned"
                        )
                    ) from None
            finally:
                for client in clients:
                    client.close()
        expected = dict(self.posts)
        if not isinstance(counts, dict):
            return CheckResult(False, f"return a dict of name -> count, not {counts!r}")
        if {k: v for k, v in counts.items() if v} != expected:
            return CheckResult(False, f"the room saw {expected}, you counted {counts}")
        return CheckResult(True, f"counted {expected} from the live stream")

    def _advice(self, exc: Exception) -> str:
        if isinstance(exc, TypeError) and "timeout" in str(exc):
            return (
                "the asyncio client's `recv()` takes no timeout (the sync client's does): "
                "wait with `await asyncio.wait_for(websocket.recv(), left)`, which raises "
                "TimeoutError after `left` seconds"
            )
        return ""

    @staticmethod
    def _wait_for_listener(server: Any, counted: concurrent.futures.Future[Any]) -> bool:
        """Whether the learner's code joined; False at once if it has already ended."""
        members = server.lesson("chat").members
        # A join takes milliseconds, even on a busy machine.
        wait_until(lambda: members or counted.done(), 3, 0.02)
        return bool(members)


q1 = BotReply("q1")
q2 = MessageCounter("q2")


class ChatHandler(Exercise):
    """q3: the server side: a chat handler that registers, broadcasts and unregisters.

    The learner's protocol is the bones of the real one: the first message is the member's
    name, every later one a text; everyone gets ``"NAME joined"``, ``"NAME: TEXT"`` and
    ``"NAME left"``. The check connects several real clients, one of which never reads and
    one of which vanishes without a closing handshake, and says what went wrong.
    """

    hint_text = (
        'after the name: `members.add(websocket)`, then `broadcast(members, f"{name} joined")`;'
        ' in the loop `broadcast(members, f"{name}: {text}")` (it sends to all at once and '
        "never waits for one member); in `finally:` `members.discard(websocket)`, then "
        '`broadcast(members, f"{name} left")`.'
    )
    solution_file = "03_chat_handler.py"
    answer_name = "a handler"
    flood = 200  # messages of 4 KiB: more than a member who never reads can buffer

    def check(  # type: ignore[override]
        self, answer: Callable[..., Any], members: Any = None
    ) -> CheckResult:
        """Check ``answer`` with the set it keeps its members in."""
        if not isinstance(members, set):
            return CheckResult(False, "pass your members set too: q3.check(chat_handler, members)")
        self._members = members
        return super().check(answer)

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        from websockets.frames import Opcode
        from websockets.sync.client import connect

        from ..clients.raw import RawClient

        members = self._members
        members.clear()  # a re-run check starts from an empty room
        with (
            scratch_server(lessons=[], routes={"/chat": answer}) as server,
            contextlib.ExitStack() as connections,  # websockets 17 wants connect() in `with`
        ):
            url = server.links.ws("/chat")

            def join(name: str) -> Any:
                websocket = connections.enter_context(
                    connect(url, open_timeout=5, close_timeout=1, proxy=proxy_for(url))
                )
                websocket.send(name)
                return websocket

            def expect(websocket: Any, wanted: str, doing: str) -> None:
                seen = []
                deadline = time.monotonic() + 2
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        seen.append(websocket.recv(timeout=left))
                    except TimeoutError:
                        break
                    except Exception as exc:
                        raise Failed(f"{doing}: the connection closed ({exc})") from None
                    if seen[-1] == wanted:
                        return
                got = ", ".join(repr(m[:30] + "…" if len(m) > 30 else m) for m in seen[-3:])
                raise Failed(f"{doing}, but {wanted!r} never came (the last: {got or 'nothing'})")

            ada = join("ada")
            expect(ada, "ada joined", "ada joined")
            bob = join("bob")
            expect(ada, "bob joined", "bob joined, and ada was told")
            if len(members) != 2:
                raise Failed(f"with ada and bob in the room, members holds {len(members)}")
            ada.send("hello")
            expect(ada, "ada: hello", "ada said hello, and her own copy")
            expect(bob, "ada: hello", "ada said hello, and bob's copy")

            # A member who never reads a byte: a broadcast that awaited each send in turn
            # would stop at them once their buffers are full, and bob would hear nothing.
            sleepy = RawClient("127.0.0.1", server.port, "/chat", receive_buffer=4096)
            sleepy.send_frame(Opcode.TEXT, b"sleepy")
            expect(bob, "sleepy joined", "sleepy joined")
            big = "x" * 4096
            for i in range(self.flood):
                ada.send(f"{i} {big}")
            last = f"ada: {self.flood - 1} {big}"
            try:
                expect(bob, last, "")
            except Failed:
                sleepy.vanish()  # frees the handler stuck sending to sleepy, so all can close
                raise Failed(
                    f"ada sent {self.flood} long messages while sleepy read none, and bob did "
                    "not get them all within 2 s: the broadcast waits for each member in "
                    "turn (`await member.send`), so one slow member holds up the room; use "
                    "`broadcast(members, ...)`, which waits for nobody"
                ) from None
            expect(ada, last, "ada's own copies")

            # A clean leave and a vanished one: both must be unregistered and announced.
            bob.close()
            expect(ada, "bob left", "bob closed his connection")
            sleepy.vanish()
            expect(ada, "sleepy left", "sleepy vanished without a goodbye (a laptop lid)")
            if len(members) != 1:
                raise Failed(
                    f"bob and sleepy left, but members still holds {len(members)} connections: "
                    "remove the member in `finally:`, so it goes however the connection ends"
                )
            ada.close()
        return CheckResult(
            True,
            "joins and leaves announced (a vanished member too), every text to everyone, "
            "a member who never reads held up nobody, and members is empty again",
        )


q3 = ChatHandler("q3")
