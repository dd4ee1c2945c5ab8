"""Exercises of notebook 07 (function calling): the tool loop, two calls at once, a failing tool.

from workshop_lib.checks.function_calling import WEATHER_TOOL, q1, q2, q3, ____

Each check starts a server of its own with the course's local model, watches what the
model is given at every ``response.create`` (so it knows what the learner sent, and when),
and gives the learner's function a tool whose answers it chose at random.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

from ..realtime.client import realtime_url
from ..realtime.model import local_model
from ..realtime.responder import Context, ToolCall
from ..realtime.server import RealtimeLesson
from ._base import CheckResult, Exercise, Failed, ____, scratch_server

__all__ = ["WEATHER_TOOL", "____", "q1", "q2", "q3"]

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
        "required": ["city"],
    },
}


# What a loop that never asked for text gets told.
AUDIO_ANSWER = (
    "the answer came in audio (its content part is output_audio, with a transcript, and no "
    'text): the service answers in audio unless you ask for text. Add "output_modalities": '
    '["text"] to your session.update, beside "tools"'
)


class _Watcher:
    """The local model, noting the context of every response it makes."""

    def __init__(self) -> None:
        self.contexts: list[Context] = []

    def __call__(self, context: Context) -> Iterator[str | ToolCall]:
        self.contexts.append(context)
        yield from local_model(context)

    runs_on_loop = True


class _ToolExercise(Exercise):
    """What the three share: run the learner's loop against a watched server."""

    answer_name = ""
    question = ""
    timeout_hint = (
        "a function_call_output starts no response by itself: after sending your output(s), "
        'send {"type": "response.create"} and wait for that response\'s response.done'
    )

    def _run(self, answer: Callable[..., Any], tool: Callable[..., Any]) -> tuple[Any, _Watcher]:
        watcher = _Watcher()
        with scratch_server(lessons=[RealtimeLesson(watcher, delay=0)]) as server:
            counts = server.lesson("realtime").counts
            try:
                got = self.run(answer, realtime_url(server), self.question, tool, timeout=10)
            except Exception:
                # What the server saw usually says more than the learner's traceback does.
                if len(watcher.contexts) > 1:
                    self._outputs(watcher)
                if counts.spoken:  # content[0]["text"] of an answer in audio: a KeyError
                    self._asked_with_the_tool(watcher)
                    raise Failed(AUDIO_ANSWER) from None
                raise
        self._asked_with_the_tool(watcher)
        if counts.spoken and not isinstance(got, str):
            raise Failed(AUDIO_ANSWER)
        return got, watcher

    @staticmethod
    def _asked_with_the_tool(watcher: _Watcher) -> None:
        if not watcher.contexts:
            raise Failed("the server never got a response.create: ask for a response")
        if not any(t.get("name") == "get_weather" for t in watcher.contexts[0].tools):
            raise Failed(
                "the model had no get_weather tool when you asked: send a session.update with "
                '"tools": [WEATHER_TOOL] first (and wait for session.updated)'
            )

    @staticmethod
    def _outputs(watcher: _Watcher) -> list[dict[str, Any]]:
        if len(watcher.contexts) < 2:
            raise Failed(
                "the model was asked only once: after the call, send the function_call_output "
                "and then a response.create, so it answers with the result"
            )
        last = watcher.contexts[-1]
        calls = {i.get("call_id") for i in last.items if i.get("type") == "function_call"}
        outputs = [i for i in last.items if i.get("type") == "function_call_output"]
        if not outputs:
            raise Failed(
                "the model was asked again without a function_call_output in the conversation: "
                "send the output first, then response.create (if the server answered your "
                "conversation.item.create with an error event, read it: the output must be a "
                "string, json.dumps(result), under the call's call_id)"
            )
        for output in outputs:
            if output["call_id"] not in calls:
                raise Failed(f"the output's call_id {output['call_id']!r} names no call")
            try:
                json.loads(output["output"])
            except ValueError:
                raise Failed(
                    f"the output {output['output'][:60]!r} is not JSON: send json.dumps(result)"
                ) from None
        return outputs


class ToolLoop(_ToolExercise):
    """q1: ``async def tool_loop(url, question, get_weather)`` returns the model's answer."""

    answer_name = "tool_loop"
    question = "What is the weather in Lisbon?"
    hint_text = (
        "the call is in response.done's output (an item of type function_call). Run "
        'get_weather(**json.loads(call["arguments"])), send a conversation.item.create of '
        '{"type": "function_call_output", "call_id": call["call_id"], "output": '
        "json.dumps(result)}, then a response.create, and return the text of that response."
    )
    solution_file = "07_tool_loop.py"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        degrees = random.randint(-5, 35)
        cities: list[str] = []

        def get_weather(city: str) -> dict[str, Any]:
            cities.append(city)
            return {"city": city, "temperature_c": degrees}

        got, watcher = self._run(answer, get_weather)
        if not cities:
            raise Failed("your loop never ran get_weather: run it with the call's arguments")
        outputs = self._outputs(watcher)
        if json.loads(outputs[0]["output"]) != {"city": cities[0], "temperature_c": degrees}:
            raise Failed(f"the output was {outputs[0]['output']!r}, not get_weather's result")
        if not isinstance(got, str) or str(degrees) not in got:
            raise Failed(f"you returned {got!r}: return the text of the answer that follows")
        return CheckResult(True, f"the model called get_weather({cities[0]!r}) and said: {got}")


class TwoCalls(_ToolExercise):
    """q2: ``async def two_calls(url, question, get_weather)``: one output per call, one ask."""

    answer_name = "two_calls"
    question = "What is the weather in Oslo and Rome?"
    hint_text = (
        "response.done's output holds two function_call items: send one function_call_output "
        "for each (its own call_id), and only then one response.create."
    )
    solution_file = "07_two_calls.py"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        degrees = {"Oslo": random.randint(-10, 10), "Rome": random.randint(15, 35)}

        def get_weather(city: str) -> dict[str, Any]:
            return {"city": city, "temperature_c": degrees.get(city, 0)}

        got, watcher = self._run(answer, get_weather)
        outputs = self._outputs(watcher)
        if len(outputs) < 2:
            raise Failed(
                f"the model got {len(outputs)} output for its 2 calls when you asked again: "
                "answer every call before the response.create"
            )
        if len(watcher.contexts) > 2:
            raise Failed(
                f"you asked for {len(watcher.contexts)} responses: one response.create after "
                "all the outputs is enough (one after each makes the model answer twice)"
            )
        if not isinstance(got, str) or not all(str(d) in got for d in degrees.values()):
            raise Failed(f"you returned {got!r}: it should hold both cities' temperatures")
        return CheckResult(True, f"two calls, two outputs, one answer: {got}")


class FailingTool(_ToolExercise):
    """q3: ``async def safe_tool_loop(url, question, get_weather)`` reports a tool's error."""

    answer_name = "safe_tool_loop"
    question = "What is the weather in Atlantis?"
    hint_text = (
        "wrap the call in try/except Exception as exc, and send "
        'json.dumps({"error": str(exc)}) as the output: the model then tells the user.'
    )
    solution_file = "07_failing_tool.py"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        reason = f"no such city (code {random.randint(100, 999)})"

        def get_weather(city: str) -> dict[str, Any]:
            raise LookupError(reason)

        try:
            got, watcher = self._run(answer, get_weather)
        except LookupError:
            raise Failed(
                "get_weather raised and so did your loop: catch the exception and send it "
                "as the output"
            ) from None
        outputs = self._outputs(watcher)
        sent = json.loads(outputs[0]["output"])
        if not isinstance(sent, dict) or reason not in str(sent.get("error", "")):
            raise Failed(f'the output was {outputs[0]["output"]!r}: send {{"error": str(exc)}}')
        if not isinstance(got, str) or reason not in got:
            raise Failed(f"you returned {got!r}: return the model's answer, which names the error")
        return CheckResult(True, f"the error reached the model, which said: {got}")


q1 = ToolLoop("q1")
q2 = TwoCalls("q2")
q3 = FailingTool("q3")
