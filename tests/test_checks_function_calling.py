"""Lesson 07's exercise checks, against the shipped solutions and wrong answers."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect

from tests.test_checks import run_solution
from workshop_lib.checks.function_calling import WEATHER_TOOL, q1, q2, q3
from workshop_lib.realtime import user_message


async def _until(websocket, kind):
    async for message in websocket:
        event = json.loads(message)
        if event["type"] == kind:
            return event
    raise AssertionError(f"closed before {kind}")


async def _ask(websocket, question, tools=True, text=True):
    session = {"type": "realtime"}
    if text:  # the service answers in audio unless asked for text
        session["output_modalities"] = ["text"]
    if tools:
        session["tools"] = [WEATHER_TOOL]
    await websocket.send(json.dumps({"type": "session.update", "session": session}))
    await _until(websocket, "session.updated")
    await websocket.send(json.dumps(user_message(question)))
    await websocket.send(json.dumps({"type": "response.create"}))
    return (await _until(websocket, "response.done"))["response"]["output"]


async def _answer(websocket, outputs):
    for call_id, output in outputs:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        await websocket.send(json.dumps({"type": "conversation.item.create", "item": item}))
    await websocket.send(json.dumps({"type": "response.create"}))
    done = await _until(websocket, "response.done")
    return done["response"]["output"][0]["content"][0]["text"]


def test_the_solutions_pass():
    for name in ("07_tool_loop.py", "07_two_calls.py", "07_failing_tool.py"):
        result = run_solution(name)
        assert result.ok, (name, result.message)


async def no_tools(url, question, get_weather):
    async with connect(url, proxy=None) as websocket:
        output = await _ask(websocket, question, tools=False)
        return output[0]["content"][0]["text"]


def test_q1_says_the_tool_was_never_declared():
    result = q1.check(no_tools)
    assert not result.ok and "no get_weather tool" in result.message


async def no_tools_in_audio(url, question, get_weather):
    async with connect(url, proxy=None) as websocket:
        output = await _ask(websocket, question, tools=False, text=False)
        return output[0]["content"][0]["text"]


def test_q1_says_the_tool_is_missing_before_it_says_the_answer_was_audio():
    result = q1.check(no_tools_in_audio)
    assert not result.ok and "no get_weather tool" in result.message, result.message


async def reads_text_of_an_answer_in_audio(url, question, get_weather):
    """The right loop, but the session never asked for text: the answer comes in audio."""
    async with connect(url, proxy=None) as websocket:
        call = (await _ask(websocket, question, text=False))[0]
        result = get_weather(**json.loads(call["arguments"]))
        return await _answer(websocket, [(call["call_id"], json.dumps(result))])


async def returns_none_for_an_answer_in_audio(url, question, get_weather):
    async with connect(url, proxy=None) as websocket:
        call = (await _ask(websocket, question, text=False))[0]
        result = get_weather(**json.loads(call["arguments"]))
        item = {"type": "function_call_output", "call_id": call["call_id"]}
        item["output"] = json.dumps(result)
        await websocket.send(json.dumps({"type": "conversation.item.create", "item": item}))
        await websocket.send(json.dumps({"type": "response.create"}))
        done = await _until(websocket, "response.done")
        return done["response"]["output"][0]["content"][0].get("text")


@pytest.mark.parametrize(
    "answer", [reads_text_of_an_answer_in_audio, returns_none_for_an_answer_in_audio]
)
def test_q1_says_the_answer_came_in_audio_when_text_was_never_asked_for(answer):
    result = q1.check(answer)
    assert not result.ok
    assert "the answer came in audio" in result.message, result.message
    assert '"output_modalities": ["text"]' in result.message


async def returns_the_call(url, question, get_weather):
    async with connect(url, proxy=None) as websocket:
        call = (await _ask(websocket, question))[0]
        return json.dumps(get_weather(**json.loads(call["arguments"])))


def test_q1_says_the_model_was_asked_only_once():
    result = q1.check(returns_the_call)
    assert not result.ok and "asked only once" in result.message


async def made_up_result(url, question, get_weather):
    async with connect(url, proxy=None) as websocket:
        call = (await _ask(websocket, question))[0]
        get_weather(**json.loads(call["arguments"]))
        return await _answer(websocket, [(call["call_id"], json.dumps({"temperature_c": 20}))])


def test_q1_says_the_output_is_not_the_tools_result():
    result = q1.check(made_up_result)
    assert not result.ok and "not get_weather's result" in result.message


async def answers_one_call_each_time(url, question, get_weather):
    async with connect(url, proxy=None) as websocket:
        calls = await _ask(websocket, question)
        text = ""
        for call in calls:
            result = get_weather(**json.loads(call["arguments"]))
            text += await _answer(websocket, [(call["call_id"], json.dumps(result))])
        return text


def test_q2_says_one_response_create_after_all_outputs():
    result = q2.check(answers_one_call_each_time)
    assert not result.ok and "responses" in result.message, result.message


async def sends_the_error_as_text(url, question, get_weather):
    async with connect(url, proxy=None) as websocket:
        call = (await _ask(websocket, question))[0]
        try:
            result = get_weather(**json.loads(call["arguments"]))
        except Exception as exc:
            return await _answer(websocket, [(call["call_id"], str(exc))])
        return json.dumps(result)


def test_q3_says_the_output_must_be_json():
    result = q3.check(sends_the_error_as_text)
    assert not result.ok and "is not JSON" in result.message
