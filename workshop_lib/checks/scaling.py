"""Exercises of notebook 06 (one room on many processes): a client that moves to the other
process and catches up with ``since``; the one reader of a process, relaying a stream.

from workshop_lib.checks.scaling import q1, q2, ____

Each check starts a Redis of its own (Debian's ``redis-server``) and its own servers, so the
learner's room and processes are never disturbed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from ..chat.client import ChatClient
from ..chat.server import ChatLesson
from ..redis.client import open_client
from ..redis.local import LocalRedis, RedisMissing
from ._base import (
    CheckResult,
    Exercise,
    Failed,
    ____,
    run_coroutine,
    scratch_server,
    start_coroutine,
    wait_until,
)

__all__ = ["____", "q1", "q2"]

WAIT = 10.0  # seconds any one step of a check may take on a busy machine
FINISH = 3.0  # seconds for the answer to return once all is said (a right one takes ms)


def _until(condition: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Wait for ``condition()`` (checking every 20 ms), or fail saying ``what`` never happened."""
    if not wait_until(condition, timeout, 0.02):
        raise Failed(what)


@contextlib.contextmanager
def _scratch_redis() -> Iterator[LocalRedis]:
    try:
        with LocalRedis() as redis:
            yield redis
    except RedisMissing as missing:
        raise Failed(str(missing)) from None


class _HeldChat(ChatLesson):
    """The chat, with a door the check can hold shut: a connection that arrives while it is
    shut waits before its first message is read, so the check decides what was said first."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.door = threading.Event()
        self.door.set()
        self.waiting = 0

    async def handler(self, websocket: Any) -> None:
        if not self.door.is_set():
            self.waiting += 1
            await asyncio.to_thread(self.door.wait, 3 * WAIT)
        await super().handler(websocket)


async def _append(url: str, stream: str, numbers: range) -> list[str]:
    """Append entries ``e<n>`` to ``stream`` in one round trip, as another process would."""
    client = open_client(url, decode_responses=True)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for n in numbers:
                pipe.xadd(stream, {"text": f"e{n}"})
            return await pipe.execute()
    finally:
        await client.aclose()


class _Asked:
    """A Redis client that notes the id each XREAD asks for (per stream), so the check can
    say which id a reader started from when it delivers entries twice."""

    def __init__(self, client: Any, asked: list[dict[str, str]]) -> None:
        self._client = client
        self._asked = asked

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def xread(self, streams: Any, *args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(TypeError, ValueError):  # not a dict: Redis will say so
            self._asked.append({str(k): str(v) for k, v in dict(streams).items()})
        return await self._client.xread(streams, *args, **kwargs)


async def _run_reader(
    answer: Callable[..., Any],
    url: str,
    stream: str,
    after: str,
    deliver: Callable[[str], None],
    asked: list[dict[str, str]],
) -> None:
    client = _Asked(open_client(url, decode_responses=True), asked)
    await answer(client, stream, after, deliver)


def _ids(messages: list[Any]) -> str:
    return ", ".join(str(i) for i in messages) or "none"


class FollowAcrossProcesses(Exercise):
    """q1: ``async def follow_room(urls, want)``: the first ``want`` messages, each once, in
    order, moving to the next address (with ``since``) when a server goes away."""

    answer_name = "follow_room"
    hint_text = (
        'on a rejoin, put `join["since"] = last_id` (the id of the newest message you saw), '
        'and take the welcome\'s `welcome["history"]`: it holds exactly what was said while '
        "you moved. When the server goes away, `async for` ends: the `for url in urls` loop "
        "then takes the next address."
    )
    timeout_hint = (
        "all 8 messages were said, and your function was still waiting. 4 to 6 were said "
        "while you moved, so they reach you only in the second welcome's history (when you "
        "join with since): count those as well as the live ones, and return at `want`"
    )
    solution_file = "06_follow.py"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        with _scratch_redis() as redis:
            prefix = f"check:{uuid.uuid4().hex[:8]}"
            lessons = [_HeldChat(redis=redis.url, redis_prefix=prefix) for _ in range(2)]
            with scratch_server(lessons=[lessons[0]]) as first:
                second = scratch_server(lessons=[lessons[1]])
                try:
                    return self._scenario(answer, first, second)
                finally:
                    second.stop()

    def _scenario(self, answer: Callable[..., Any], first: Any, second: Any) -> CheckResult:
        on_first, on_second = first.lesson("chat"), second.lesson("chat")
        urls = [first.links.ws("/chat"), second.links.ws("/chat")]
        poster = ChatClient(urls[1], "poster")
        try:
            _until(lambda: on_second.redis_ok, "the second server never reached its Redis")
            on_second.door.clear()  # the poster is in; the learner will wait at the door
            result = start_coroutine(answer(urls, 8))
            _until(
                lambda: on_first.members or result.done(),
                "your function never joined the room on the first address, urls[0]",
            )
            if result.done():
                result.result()  # raises what the learner's code raised
                raise Failed("your function returned before the room said anything")
            for n in (1, 2, 3):
                poster.send(f"message {n}")
            _until(lambda: len(poster.messages) >= 3, "the room did not say messages 1 to 3")
            third = poster.messages[2]["id"]
            _until(lambda: on_first.last_id >= third, "the first server did not deliver 1 to 3")
            first.stop()  # its members get 1001 (going away) and have to move
            _until(
                lambda: on_second.waiting or result.done(),
                "after the first server went away, your function never connected to the "
                "second address, urls[1]: when `async for` ends, go on to the next URL",
            )
            if result.done():
                result.result()  # raises what the learner's code raised
                raise Failed(
                    "your function returned when the first server went away and never "
                    "connected to the second address, urls[1]: go on to the next URL"
                )
            for n in (4, 5, 6):  # said while the learner is on the way to the second server
                poster.send(f"message {n}")
            _until(lambda: len(poster.messages) >= 6, "the room did not say messages 4 to 6")
            on_second.door.set()  # now its join is read: 4 to 6 are in the room's past
            _until(
                lambda: any(name != "poster" for name in on_second.members) or result.done(),
                "your function connected to the second address but never joined the room",
            )
            for n in (7, 8):
                poster.send(f"message {n}")
            # FINISH counts from when the room said 8 (the poster hears it with everyone on
            # that server), not from the send: on a busy machine the relay takes its time.
            _until(lambda: len(poster.messages) >= 8, "the room did not say messages 7 and 8")
            try:
                got = result.result(FINISH)
            except concurrent.futures.TimeoutError:
                raise Failed(f"follow_room did not finish: {self.timeout_hint}") from None
        finally:
            poster.close()
        return self._judge(got)

    def _judge(self, got: Any) -> CheckResult:
        try:
            texts = [text for _id, text in got]
        except (TypeError, ValueError):
            raise Failed(f"return a list of (id, text) pairs, not {got!r}") from None
        numbers = [int(t.rsplit(" ", 1)[-1]) for t in texts if str(t).startswith("message ")]
        expected = list(range(1, 9))
        if numbers == expected:
            return CheckResult(
                True,
                "messages 1 to 8 once each, in order: 1-3 on the first server, 4-6 from the "
                "second one's welcome (since), 7-8 live",
            )
        twice = sorted(n for n, k in Counter(numbers).items() if k > 1)
        if twice:
            raise Failed(
                f"messages {_ids(twice)} came twice: join the second server with "
                '"since": the last id you saw, and its welcome holds only what you missed'
            )
        missing = [n for n in expected if n not in numbers]
        if missing and set(missing) <= {4, 5, 6}:
            raise Failed(
                f"you missed messages {_ids(missing)}, said while you moved: they are in the "
                "welcome's history (with since), read them before the live ones"
            )
        if missing:
            raise Failed(
                f"messages {_ids(missing)} never reached you (you got {_ids(numbers)}): "
                '"since" is the id of the newest message you saw, not the next one'
            )
        raise Failed(f"the messages came as {_ids(numbers)}; they should be 1 to 8 in order")


class StreamRelay(Exercise):
    """q2: ``async def relay(redis, stream, after, deliver)``: the process's one reader,
    delivering every entry after ``after``, in order, each once, for ever."""

    answer_name = "relay"
    hint_text = (
        "ask `redis.xread({stream: last}, block=1000)` for what comes after `last`, deliver "
        'each entry\'s `fields["text"]`, and set `last = entry_id` after each: the next read '
        'starts right after it. Start from `after`, not from "$" (that means "only from now").'
    )
    solution_file = "06_relay.py"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        with _scratch_redis() as redis:
            stream = f"check:{uuid.uuid4().hex[:8]}"
            ids = run_coroutine(_append(redis.url, stream, range(1, 6)), WAIT)
            delivered: list[str] = []
            # The learner's reader runs on a loop and a daemon thread of its own, never
            # cancelled: redis-py can swallow a cancel that lands mid-command, and the
            # reader would run on. It ends when this check's Redis stops, below.
            asked: list[dict[str, str]] = []
            reader = start_coroutine(
                _run_reader(answer, redis.url, stream, ids[1], delivered.append, asked)
            )
            # Then the other processes talk: in bursts, and while the reader is between two
            # reads, so a reader that starts each read from "now" misses some.
            for burst in range(4):
                first = 6 + burst * 5
                run_coroutine(_append(redis.url, stream, range(first, first + 5)), WAIT)
                time.sleep(0.05)
            # The learner's reader fills the list.
            wait_until(lambda: len(delivered) >= 23 or reader.done(), 3, 0.02)
            if not reader.done():
                time.sleep(0.3)  # anything it would deliver twice comes now
            got = list(delivered)
        if reader.done() and reader.exception() is not None and not got:
            raise reader.exception()  # a learner's bug, or the check's Redis going away
        return self._judge(got, [a.get(stream) for a in asked], ids[1])

    def _judge(
        self, delivered: list[str], asked: list[str | None] | None = None, after: str = ""
    ) -> CheckResult:
        expected = [f"e{n}" for n in range(3, 26)]
        if delivered == expected:
            return CheckResult(
                True, "e3 to e25 once each, in order: what was there after `after`, then live"
            )
        if delivered[:1] == ["e1"]:
            raise Failed("you delivered e1 and e2 too: start after `after`, not from the top")
        counts = Counter(delivered)
        twice = [e for e in expected if counts[e] > 1]
        if twice and asked and len(asked) > 1 and set(asked) == {after}:
            raise Failed(
                f"{twice[0]} came {counts[twice[0]]} times: every XREAD asked for what comes "
                f"after {after} (`after`, the id you started from), so each read began again "
                "at e3. Ask for what comes after the entry you delivered last: "
                "`{stream: last}`, with `last = entry_id` after each delivery"
            )
        if twice:
            raise Failed(
                f"{twice[0]} came {counts[twice[0]]} times: after each entry set `last` to its "
                "id, so the next XREAD asks for what comes after it"
            )
        missing = [e for e in expected if e not in counts]
        if {"e3", "e4", "e5"} <= set(missing):
            raise Failed(
                'e3, e4 and e5 were in the stream before you started and never came: "$" means '
                '"only what is added from now"; start from `after`'
            )
        if missing:
            raise Failed(
                f"{len(missing)} entries never came (first: {missing[0]}): read from the id of "
                'the last entry you delivered, not from "$", or those added between two reads '
                "are lost"
            )
        raise Failed(f"you delivered {delivered!r}; expected e3 to e25 in order")


q1 = FollowAcrossProcesses("q1")
q2 = StreamRelay("q2")
