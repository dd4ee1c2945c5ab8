"""The course's local model: deterministic, explained, and able to call the tools it is given.

It answers from its :class:`~workshop_lib.realtime.responder.Context` by four rules, in this
order (lesson 07 shows each one):

1. **A tool has answered** (the conversation ends with ``function_call_output`` items) and
   ``tool_choice`` forces no call: it answers in words that use those outputs' values
   (``get_weather says: city Paris, temperature 18.``), or says the tool failed when the
   output is a JSON object with an ``"error"``.
2. **A call is forced:** ``tool_choice`` ``{"type": "function", "name": N}`` calls ``N``;
   ``"required"`` calls the tools that match the user's words, or the first tool.
3. **The words match a tool** (``tool_choice`` ``"auto"``): a tool matches when a word of its
   name or of its description is in the user's message ("weather" matches ``get_weather``).
   It calls every tool that matches; when the user names several things for one tool ("the
   weather in Paris and Tokyo") it calls it once for each. With ``parallel_tool_calls: false``
   it makes the first call only.
4. **Otherwise** (no tools, ``tool_choice: "none"``, no match) it repeats what it heard, as
   lesson 05's :func:`~workshop_lib.realtime.responder.echo_responder` does; when the user
   spoke (an audio message, which nothing here transcribes) it says how long: "I heard 2.1
   seconds of speech."

Arguments are filled from the user's words to fit the tool's JSON Schema: a string takes a
name written with a capital ("Paris"), or the word after "in", "for", "at"...; an ``enum``
takes the value the user wrote ("celsius"), else its first; a number takes the numbers in
the message in order; a property that is not ``required`` is left out unless the words give
it. Real models decide differently; the shape of the exchange is the same.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

from .responder import Context, ToolCall, echo_responder

__all__ = ["call_arguments", "local_model", "matching_tools"]

# Words too common to say which tool the user means.
_COMMON = frozenset(
    " ".join(
        (
            "a an and any are as at be by call can current do does for from get give given how",
            "i in is it its look me my of on or please return returns set tell that the this to",
            "tool use user what when which with you your find show fetch about",
        )
    ).split(" ")
)
_PREPOSITIONS = ("in", "for", "at", "from", "to", "near", "about", "of", "on")
_WHOLE_TEXT = {"query", "q", "text", "question", "message", "prompt", "input", "request"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _keywords(tool: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """A tool's name words and description words, without the common ones."""
    return _keywords_of(str(tool.get("name", "")), str(tool.get("description") or ""))


# A session declares its tools once and asks many times: their words are worked out once.
@functools.lru_cache(maxsize=256)
def _keywords_of(name: str, description: str) -> tuple[frozenset[str], frozenset[str]]:
    name = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    name_words = {w for w in _words(name.replace("_", " ").replace("-", " ")) if w not in _COMMON}
    described = {w for w in _words(description) if w not in _COMMON}
    return frozenset(name_words), frozenset(w for w in described if len(w) >= 4)


def matching_tools(text: str, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools the user's words name, best first (a name word counts twice)."""
    words = _words(text)
    # A keyword of five letters or more matches a word of five or more by their first five
    # ("weathers" is "weather", "temperatures" is "temperature"); a shorter one only itself.
    exact, stems = set(words), {w[:5] for w in words if len(w) >= 5}

    def named(keyword: str) -> bool:
        return keyword[:5] in stems if len(keyword) >= 5 else keyword in exact

    scored = []
    for index, tool in enumerate(tools):
        name_words, described = _keywords(tool)
        score = sum(2 for k in name_words if named(k))
        score += sum(1 for k in described if named(k))
        if score:
            scored.append((-score, index, tool))
    return [tool for _, _, tool in sorted(scored, key=lambda s: s[:2])]


def _names(text: str) -> list[str]:
    """Names written with capitals, not counting a sentence's first word: "Paris", "New York"."""
    found = []
    for sentence in re.split(r"[.!?]\s*", text):
        tokens = re.findall(r"[\w'-]+", sentence)
        run: list[str] = []
        for position, token in enumerate(tokens):
            if position > 0 and token[:1].isupper() and token != "I":
                run.append(token)
                continue
            if run:
                found.append(" ".join(run))
            run = []
        if run:
            found.append(" ".join(run))
    return found


def _after_preposition(text: str) -> str | None:
    tokens = re.findall(r"[\w'-]+", text)
    for position in range(len(tokens) - 2, -1, -1):
        if tokens[position].lower() in _PREPOSITIONS:
            return tokens[position + 1]
    return None


def call_arguments(
    text: str, tool: dict[str, Any], name: str | None = None, *, names: list[str] | None = None
) -> dict[str, Any]:
    """Arguments for ``tool`` from the user's ``text``, fitting its JSON Schema.

    ``name``: the value for its first name-like string property (one call of several).
    ``names``: the text's names (``_names(text)``), when the caller has them already.
    """
    schema = tool.get("parameters") or {}
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    lowered = text.lower()
    names = [name] if name is not None else list(_names(text) if names is None else names)
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]
    arguments: dict[str, Any] = {}
    for key, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type")
        kind = kind[0] if isinstance(kind, list) and kind else kind
        value: Any = None
        if isinstance(spec.get("enum"), list) and spec["enum"]:
            given = [v for v in spec["enum"] if str(v).lower() in lowered]
            if given:
                value = given[0]
            elif key in required:
                value = spec.get("default", spec["enum"][0])
        elif kind == "string":
            if key.lower() in _WHOLE_TEXT:
                value = text
            elif names:
                value = names.pop(0)
            elif (word := _after_preposition(text)) is not None:
                value = word
            elif key in required:
                value = text
        elif kind in ("integer", "number"):
            if numbers:
                value = numbers.pop(0)
            elif key in required:
                value = spec.get("default", spec.get("minimum", 0))
            if value is not None:
                value = _clamp(value, spec)
                value = int(value) if kind == "integer" else value
        elif key in required:
            value = spec.get("default", {"boolean": False, "array": [], "object": {}}.get(kind))
        if value is not None:
            arguments[key] = value
    return arguments


def _clamp(value: float, spec: dict[str, Any]) -> float:
    low, high = spec.get("minimum"), spec.get("maximum")
    if isinstance(low, int | float):
        value = max(value, low)
    if isinstance(high, int | float):
        value = min(value, high)
    return value


def _calls(context: Context) -> list[ToolCall]:
    """The calls rules 2 and 3 make (none: answer in words)."""
    tools, choice, text = context.tools, context.tool_choice, context.text
    if not tools or choice == "none":
        return []
    if isinstance(choice, dict):
        forced = [t for t in tools if t.get("name") == choice.get("name")]
        return [ToolCall(t["name"], call_arguments(text, t)) for t in forced[:1]]
    chosen = matching_tools(text, tools)
    if not chosen and choice == "required":
        chosen = tools[:1]
    calls = []
    names = _names(text)  # once: call_arguments takes a copy
    for tool in chosen:
        if tool is chosen[0] and len(names) > 1 and _one_name_slot(tool):
            calls += [ToolCall(tool["name"], call_arguments(text, tool, n)) for n in names]
        else:
            calls.append(ToolCall(tool["name"], call_arguments(text, tool, names=names)))
    return calls if context.parallel_tool_calls else calls[:1]


def _one_name_slot(tool: dict[str, Any]) -> bool:
    properties = (tool.get("parameters") or {}).get("properties") or {}
    slots = [
        k
        for k, spec in properties.items()
        if isinstance(spec, dict)
        and spec.get("type") == "string"
        and "enum" not in spec
        and k.lower() not in _WHOLE_TEXT
    ]
    return len(slots) == 1


def _say_outputs(outputs: list[dict[str, Any]]) -> str:
    """Rule 1: words that use the tools' outputs."""
    sentences = []
    for output in outputs:
        name = output["name"] or "the tool"
        try:
            value = json.loads(output["output"])
        except ValueError:
            value = output["output"]
        if isinstance(value, dict) and "error" in value:
            sentences.append(f"Sorry, {name} failed: {value['error']}.")
        elif isinstance(value, dict):
            facts = ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
            sentences.append(f"{name} says: {facts}.")
        else:
            sentences.append(f"{name} says: {_plain(value)}.")
    return " ".join(sentences)


def _latest_outputs(context: Context) -> list[dict[str, Any]]:
    """The outputs that end the conversation: the answers to the model's latest calls."""
    trailing = set()
    for item in reversed(context.items):
        if item.get("type") != "function_call_output":
            break
        trailing.add(item.get("call_id"))
    return [output for output in context.outputs if output["call_id"] in trailing]


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


def local_model(context: str) -> Iterator[str | ToolCall]:
    """The course's default model (the rules above): words a word at a time, or tool calls."""
    if not isinstance(context, Context):
        context = Context(context)
    forced = context.tool_choice == "required" or isinstance(context.tool_choice, dict)
    latest = _latest_outputs(context)
    if latest and not forced:
        yield from re.findall(r"\S+\s*", _say_outputs(latest))
        return
    calls = _calls(context)
    if calls:
        yield from calls
        return
    if not context.text and context.audio_ms is not None:
        # Nothing here recognizes speech: say what arrived rather than invent its words.
        yield from re.findall(
            r"\S+\s*", f"I heard {context.audio_ms / 1000:.1f} seconds of speech."
        )
        return
    yield from echo_responder(context.text)


local_model.runs_on_loop = True  # type: ignore[attr-defined]  # it only reads its context
