"""The local "model": a plain function from the user's text to the pieces of its answer.

    def shout(text):                 # yours: text in, chunks out
        for word in text.split():
            yield word.upper() + " "

    start_server(lessons=default_lessons(realtime={"responder": shout}))

A responder may be a generator (as above), a function returning a string or a list, or an
``async def`` generator. Plain functions run on a thread of their own, so a slow one (a
real model, ``time.sleep``) never holds up the server's loop or another session; the
session stops asking for chunks as soon as the response is cancelled.

A responder that can never block (it only computes from the text, as the default does) may
say so with ``runs_on_loop = True``: it then runs on the loop itself, which spares each
chunk a trip to a thread and back (bench/realtime_stream.py measures both).
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Executor

__all__ = ["Responder", "ResponderError", "echo_responder", "stream"]

Responder = Callable[[str], Iterable[str] | AsyncIterable[str] | str]


class ResponderError(Exception):
    """The responder broke the rules (raised, or yielded something that is not text)."""


def echo_responder(text: str) -> Iterator[str]:
    """The default responder: repeats what it heard and counts the words, a word at a time.

    Deterministic, so a notebook cell and a test see the same answer every time.
    """
    words = text.split()
    if not words:
        reply = "I heard nothing: send a conversation.item.create with some text first."
    else:
        plural = "" if len(words) == 1 else "s"
        reply = f"You said “{' '.join(words)}”: {len(words)} word{plural}."
    yield from re.findall(r"\S+\s*", reply)


echo_responder.runs_on_loop = True  # type: ignore[attr-defined]  # it only reads its text


_DONE = object()


async def stream(responder: Responder, text: str, executor: Executor) -> AsyncIterator[str]:
    """The responder's chunks for ``text``, without blocking the loop.

    Raises :class:`ResponderError` naming what went wrong in the learner's function.
    """
    loop = asyncio.get_running_loop()
    if getattr(responder, "runs_on_loop", False):
        for chunk in _inline(responder, text):
            yield _text(chunk)
        return
    try:
        if inspect.isasyncgenfunction(responder):
            chunks: object = responder(text)
        elif inspect.iscoroutinefunction(responder):
            chunks = await responder(text)
        else:
            chunks = await loop.run_in_executor(executor, responder, text)
    except Exception as exc:
        raise ResponderError(f"the responder raised {type(exc).__name__}: {exc}") from exc
    if isinstance(chunks, str):
        chunks = [chunks]
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield _text(chunk)
        return
    if not isinstance(chunks, Iterable):
        raise ResponderError(
            f"the responder returned {type(chunks).__name__}; return text, or yield pieces of it"
        )
    iterator = iter(chunks)
    while True:
        try:
            # next() runs the generator's body up to its next yield: on a thread, so that a
            # slow step (a sleep, a real model) waits there and not on the event loop.
            chunk = await loop.run_in_executor(executor, next, iterator, _DONE)
        except Exception as exc:
            raise ResponderError(f"the responder raised {type(exc).__name__}: {exc}") from exc
        if chunk is _DONE:
            return
        yield _text(chunk)


def _inline(responder: Responder, text: str) -> Iterable[object]:
    """A non-blocking responder's chunks, with its exceptions named as the thread path does."""
    try:
        chunks = responder(text)
        yield from [chunks] if isinstance(chunks, str) else chunks  # type: ignore[union-attr]
    except Exception as exc:
        raise ResponderError(f"the responder raised {type(exc).__name__}: {exc}") from exc


def _text(chunk: object) -> str:
    if not isinstance(chunk, str):
        raise ResponderError(f"the responder yielded {type(chunk).__name__}, not text (str)")
    return chunk
