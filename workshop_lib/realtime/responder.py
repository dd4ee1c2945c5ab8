"""The local "model": a plain function from what it is asked to the pieces of its answer.

    def shout(text):                 # yours: text in, chunks out
        for word in text.split():
            yield word.upper() + " "

    start_server(lessons=default_lessons(realtime={"responder": shout}))

What it gets is a :class:`Context`: a ``str`` (the last user message's text, so the
function above works as it is) that also carries the conversation's ``items``, the
effective ``instructions``, ``tools``, ``tool_choice`` and ``parallel_tool_calls``. To call a
tool, yield a :class:`ToolCall`; its arguments stream to the client as the service streams
them::

    def weather_model(context):
        if context.outputs:                           # a tool answered: say what it said
            yield f"It is {context.outputs[0]['output']}."
        elif any(tool["name"] == "get_weather" for tool in context.tools):
            yield ToolCall("get_weather", {"city": "Paris"})

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
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Context",
    "Responder",
    "ResponderError",
    "ToolCall",
    "echo_responder",
    "on_loop",
    "stream",
]


@dataclass(frozen=True)
class ToolCall:
    """A responder's request that the client run ``name`` with ``arguments``.

    ``arguments``: a dict (sent as JSON) or a JSON string, as the model writes it.
    """

    name: str
    arguments: Mapping[str, Any] | str = "{}"

    def arguments_json(self) -> str:
        """The arguments as the JSON string the client receives."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)


class Context(str):
    """What a response is asked: the last user text (the ``str`` itself), and the rest.

    ``items``: the conversation as the response sees it (the session's, or the
    ``response.create``'s own ``input``), oldest first. ``instructions``, ``tools``,
    ``tool_choice``, ``parallel_tool_calls``: the session's, or the response's own where
    it gives them. ``outputs``: the ``function_call_output`` items since the last user
    message, each with the ``name`` and ``arguments`` of the call it answers.
    ``audio_ms``: when the last user message is audio, its length in milliseconds (the
    local server does not recognize speech, so the text is then empty), else None.
    """

    items: list[dict[str, Any]]
    instructions: str
    tools: list[dict[str, Any]]
    tool_choice: Any
    parallel_tool_calls: bool
    outputs: list[dict[str, Any]]
    audio_ms: int | None  # the last user message was audio, this long (nothing transcribes it)

    def __new__(
        cls,
        text: str = "",
        *,
        items: list[dict[str, Any]] | None = None,
        instructions: str = "",
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
        parallel_tool_calls: bool = True,
        audio_ms: int | None = None,
    ) -> Context:
        context = super().__new__(cls, text)
        context.items = list(items or [])
        context.instructions = instructions
        context.tools = list(tools or [])
        context.tool_choice = tool_choice
        context.parallel_tool_calls = parallel_tool_calls
        context.outputs = _outputs(context.items)
        context.audio_ms = audio_ms
        return context

    @property
    def text(self) -> str:
        """The last user message's text, as a plain ``str``."""
        return str.__str__(self)


def _outputs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool outputs after the last user message, with their calls' names and arguments."""
    calls: dict[str, dict[str, Any]] = {}
    outputs: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind == "message" and item.get("role") == "user":
            outputs = []
        elif kind == "function_call":
            calls[str(item.get("call_id"))] = item
        elif kind == "function_call_output":
            call = calls.get(str(item.get("call_id")), {})
            outputs.append(
                {
                    "call_id": item.get("call_id"),
                    "name": call.get("name", ""),
                    "arguments": call.get("arguments", ""),
                    "output": item.get("output", ""),
                }
            )
    return outputs


Chunk = str | ToolCall
Responder = Callable[[str], Iterable[Chunk] | AsyncIterable[Chunk] | str]


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


async def stream(
    responder: Responder, text: str, executor: Executor
) -> AsyncIterator[str | ToolCall]:
    """The responder's chunks (text, or tool calls) for ``text``, without blocking the loop.

    Raises :class:`ResponderError` naming what went wrong in the learner's function.
    """
    loop = asyncio.get_running_loop()
    chunks_here = on_loop(responder, text)
    if chunks_here is not None:
        for chunk in chunks_here:
            yield chunk
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


def on_loop(responder: Responder, text: str) -> Iterator[str | ToolCall] | None:
    """A responder that says ``runs_on_loop``: its checked chunks as a plain iterator, each
    computed when asked for (None for any other responder: use :func:`stream`).

    Plain, not async: a session takes the first chunk in the handler's own step, with no
    asynchronous generator to make and drive before the first delta can leave.
    """
    if not getattr(responder, "runs_on_loop", False):
        return None
    return map(_text, _inline(responder, text))


def _inline(responder: Responder, text: str) -> Iterable[object]:
    """A non-blocking responder's chunks, with its exceptions named as the thread path does."""
    try:
        chunks = responder(text)
        yield from [chunks] if isinstance(chunks, str) else chunks  # type: ignore[union-attr]
    except Exception as exc:
        raise ResponderError(f"the responder raised {type(exc).__name__}: {exc}") from exc


def _text(chunk: object) -> str | ToolCall:
    if isinstance(chunk, ToolCall):
        if not isinstance(chunk.name, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", chunk.name):
            raise ResponderError(f"the responder called a tool named {chunk.name!r}")
        try:
            json.loads(chunk.arguments_json())
        except (TypeError, ValueError) as exc:
            raise ResponderError(
                f"the responder's arguments for {chunk.name} are not JSON"
            ) from exc
        return chunk
    if not isinstance(chunk, str):
        raise ResponderError(
            f"the responder yielded {type(chunk).__name__}, not text (str) or a ToolCall"
        )
    return chunk
