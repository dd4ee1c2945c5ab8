"""Shapes of the Realtime API's client objects, checked field by field as the service does.

A shape checks one JSON value and returns it with its defaults filled in, or raises
:class:`~workshop_lib.realtime.events.RealtimeError` naming the field (``param``) and the
code the service uses::

    SESSION.check({"type": "realtime", "tools": "x"}, "session")
    # RealtimeError: Invalid type for 'session.tools': expected an array, but got a string
    # instead.  (code invalid_type, param session.tools)

The shapes follow the SDK's own types (``openai/types/realtime/``): the session
(``RealtimeSessionCreateRequest``), a response's settings (``RealtimeResponseCreateParams``)
and the conversation's items. :func:`merge` applies a checked ``session.update`` to the
session: the containers (``audio``, ``audio.input``, ``audio.output``) merge, so a field the
update leaves out keeps its value; every other field is replaced whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .wire import RealtimeError

__all__ = [
    "ITEM",
    "RESPONSE",
    "SESSION",
    "Shape",
    "kind_of",
    "merge",
]


def kind_of(value: Any) -> str:
    """How the service names a JSON value's type in its messages ("an integer", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _wrong_type(param: str, expected: str, value: Any) -> RealtimeError:
    return RealtimeError(
        f"Invalid type for '{param}': expected {expected}, but got {kind_of(value)} instead.",
        code="invalid_type",
        param=param,
    )


def _join(param: str, name: str) -> str:
    return f"{param}.{name}" if param else name


_PATHS: dict[tuple[str, str], str] = {}


def _path(param: str, name: str) -> str:
    """``_join``, remembered: the same few paths come back with every event."""
    path = _PATHS.get((param, name))
    if path is None:
        path = _join(param, name)
        if len(_PATHS) < 4096:  # indexes make paths many; the common ones fit
            _PATHS[(param, name)] = path
    return path


def _quoted(values: tuple[Any, ...]) -> str:
    shown = [f"'{v}'" for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


class Shape:
    """One field's rule: :meth:`check` returns the value (defaults filled) or raises."""

    expected = "a value"
    nullable = False

    def check(self, value: Any, param: str) -> Any:
        raise NotImplementedError


@dataclass
class Str(Shape):
    """A string, optionally at most ``max_len`` long and matching ``pattern``."""

    max_len: int | None = None
    pattern: str | None = None
    nullable: bool = False
    expected = "a string"

    def check(self, value: Any, param: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            raise _wrong_type(param, self.expected, value)
        if self.max_len is not None and len(value) > self.max_len:
            raise RealtimeError(
                f"Invalid '{param}': string too long. Expected a string with maximum length "
                f"{self.max_len}, but got a string with length {len(value)} instead.",
                code="string_above_max_length",
                param=param,
            )
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise RealtimeError(
                f"Invalid '{param}': string does not match pattern. Expected a string that "
                f"matches the pattern '{self.pattern}'.",
                code="invalid_value",
                param=param,
            )
        try:  # json.loads lets a lone "\ud800" through; it cannot be sent on
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RealtimeError(
                f"Invalid '{param}': the string holds an unpaired surrogate (\\ud800-\\udfff).",
                code="invalid_value",
                param=param,
            ) from None
        return value


@dataclass
class Number(Shape):
    """A number from ``low`` to ``high``; ``whole``: an integer."""

    low: float | None = None
    high: float | None = None
    whole: bool = False
    nullable: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "an integer" if self.whole else "a decimal number"

    def check(self, value: Any, param: str) -> Any:
        if value is None and self.nullable:
            return None
        allowed = int if self.whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise _wrong_type(param, self.expected, value)
        noun = "integer" if self.whole else "decimal"
        if self.low is not None and value < self.low:
            raise RealtimeError(
                f"Invalid '{param}': {noun} below minimum value. Expected a value >= "
                f"{self.low:g}, but got {value:g} instead.",
                code=f"{noun}_below_min_value",
                param=param,
            )
        if self.high is not None and value > self.high:
            raise RealtimeError(
                f"Invalid '{param}': {noun} above maximum value. Expected a value <= "
                f"{self.high:g}, but got {value:g} instead.",
                code=f"{noun}_above_max_value",
                param=param,
            )
        return value


@dataclass
class Bool(Shape):
    """true or false."""

    expected = "a boolean"

    def check(self, value: Any, param: str) -> Any:
        if not isinstance(value, bool):
            raise _wrong_type(param, self.expected, value)
        return value


class Enum(Shape):
    """One of a few strings."""

    expected = "a string"

    def __init__(self, *values: str, nullable: bool = False) -> None:
        self.values = values
        self.nullable = nullable

    def check(self, value: Any, param: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            raise _wrong_type(param, f"one of {_quoted(self.values)}", value)
        if value not in self.values:
            raise RealtimeError(
                f"Invalid value: '{value[:60]}'. Supported values are: {_quoted(self.values)}.",
                code="invalid_value",
                param=param,
            )
        return value


@dataclass
class Anything(Shape):
    """Any JSON object (a JSON Schema, a tracing's metadata): kept as given."""

    expected = "an object"
    nullable: bool = False

    def check(self, value: Any, param: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            raise _wrong_type(param, self.expected, value)
        return value


@dataclass
class Map(Shape):
    """An object of strings to strings (``metadata``): at most ``max_keys`` keys."""

    max_keys: int = 16
    max_key: int = 64
    max_value: int = 512
    nullable: bool = True
    expected = "an object"

    def check(self, value: Any, param: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            raise _wrong_type(param, self.expected, value)
        if len(value) > self.max_keys:
            raise RealtimeError(
                f"Invalid '{param}': too many properties. Expected an object with at most "
                f"{self.max_keys} properties, but got an object with {len(value)} instead.",
                code="object_above_max_properties",
                param=param,
            )
        for key, item in value.items():
            Str(self.max_key).check(key, f"{param}.{key[:64]}")
            Str(self.max_value).check(item, f"{param}.{key[:64]}")
        return value


@dataclass
class Array(Shape):
    """A list of ``of``, at most ``max_len`` long."""

    of: Shape
    max_len: int = 128
    nullable: bool = False
    expected = "an array"

    def check(self, value: Any, param: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, list):
            raise _wrong_type(param, self.expected, value)
        if len(value) > self.max_len:
            raise RealtimeError(
                f"Invalid '{param}': array too long. Expected an array with maximum length "
                f"{self.max_len}, but got an array with length {len(value)} instead.",
                code="array_above_max_length",
                param=param,
            )
        return [self.of.check(item, f"{param}[{i}]") for i, item in enumerate(value)]


@dataclass
class Obj(Shape):
    """An object with these ``fields``: unknown ones refused, ``required`` ones demanded.

    ``defaults`` fill what the client left out (as the service's echo shows them).
    """

    fields: dict[str, Shape]
    required: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    nullable: bool = False
    expected = "an object"

    def check(self, value: Any, param: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            raise _wrong_type(param, self.expected, value)
        if not value.keys() <= self.fields.keys():
            name = next(name for name in value if name not in self.fields)
            raise RealtimeError(
                f"Unknown parameter: '{_join(param, str(name)[:60])}'.",
                code="unknown_parameter",
                param=_join(param, str(name)[:60]),
            )
        for name in self.required:
            if name not in value:
                raise RealtimeError(
                    f"Missing required parameter: '{_join(param, name)}'.",
                    code="missing_required_parameter",
                    param=_join(param, name),
                )
        checked = dict(self.defaults)
        for name, item in value.items():
            checked[name] = self.fields[name].check(item, _path(param, name))
        return checked


class Tagged(Shape):
    """One of several objects, told apart by their ``type`` field."""

    expected = "an object"

    def __init__(self, variants: Mapping[str, Obj], *, nullable: bool = False) -> None:
        self.variants = variants
        self.nullable = nullable
        self.kinds = Enum(*variants)

    def check(self, value: Any, param: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            raise _wrong_type(param, self.expected, value)
        if "type" not in value:
            raise RealtimeError(
                f"Missing required parameter: '{param}.type'.",
                code="missing_required_parameter",
                param=f"{param}.type",
            )
        kind = value["type"]
        if not isinstance(kind, str) or kind not in self.variants:
            self.kinds.check(kind, _path(param, "type"))  # raises, naming the values
        return self.variants[kind].check(value, param)


class Either(Shape):
    """A value whose JSON type picks its rule: e.g. a string mode or an object."""

    def __init__(self, expected: str, *, nullable: bool = False, **by_type: Shape) -> None:
        self.expected = expected
        self.nullable = nullable
        self.by_type = by_type  # keys: str, int, number, bool, list, dict

    def check(self, value: Any, param: str) -> Any:
        if value is None and self.nullable:
            return None
        name = {str: "str", bool: "bool", int: "int", float: "number", list: "list", dict: "dict"}
        key = name.get(type(value), "")
        if key == "int" and "int" not in self.by_type:
            key = "number"
        if key not in self.by_type:
            raise _wrong_type(param, self.expected, value)
        return self.by_type[key].check(value, param)


class OneModality(Shape):
    """``output_modalities``: ``["text"]`` or ``["audio"]`` (audio comes with its transcript),
    never both, as the service takes it."""

    expected = "an array"

    def check(self, value: Any, param: str) -> Any:
        values = Array(Enum("text", "audio"), max_len=1).check(value, param)
        if not values:
            raise RealtimeError(
                f'Invalid value for \'{param}\': give one modality, ["text"] or ["audio"] '
                "(an answer in audio carries its transcript).",
                code="invalid_value",
                param=param,
            )
        return values


class Tools(Shape):
    """``tools``: function tools only, names unique (the service's MCP tools need a network)."""

    expected = "an array"

    def check(self, value: Any, param: str) -> Any:
        tools = Array(Tagged({"function": FUNCTION_TOOL, "mcp": MCP_TOOL})).check(value, param)
        names: set[str] = set()
        for index, tool in enumerate(tools):
            if tool["type"] == "mcp":
                raise RealtimeError(
                    f"Invalid value for '{param}[{index}].type': this local server cannot reach "
                    "MCP servers; declare a tool of type 'function' and run it yourself.",
                    code="invalid_value",
                    param=f"{param}[{index}].type",
                )
            if tool["name"] in names:
                raise RealtimeError(
                    f"Invalid '{param}': duplicate tool name '{tool['name']}'.",
                    code="invalid_value",
                    param=f"{param}[{index}].name",
                )
            names.add(tool["name"])
        return tools


# -- the service's objects -----------------------------------------------------------------------

FUNCTION_NAME = r"[a-zA-Z0-9_-]{1,64}"

FUNCTION_TOOL = Obj(
    {
        "type": Enum("function"),
        "name": Str(pattern=FUNCTION_NAME),
        "description": Str(max_len=1024),
        "parameters": Anything(),
    },
    required=("type", "name"),
    defaults={"description": "", "parameters": {"type": "object", "properties": {}}},
)
MCP_TOOL = Obj(
    dict.fromkeys(
        (
            "type",
            "server_label",
            "server_url",
            "connector_id",
            "authorization",
            "headers",
            "allowed_tools",
            "require_approval",
            "server_description",
            "allowed_callers",
            "defer_loading",
            "tunnel_id",
        ),
        Anything(),
    )
    | {"type": Enum("mcp"), "server_label": Str()},
    required=("type", "server_label"),
)
TOOL_CHOICE = Either(
    "a string or an object",
    str=Enum("auto", "none", "required"),
    dict=Tagged(
        {
            "function": Obj({"type": Enum("function"), "name": Str()}, required=("name",)),
            "mcp": Obj(
                {"type": Enum("mcp"), "server_label": Str(), "name": Str(nullable=True)},
                required=("server_label",),
            ),
        }
    ),
)
AUDIO_FORMAT = Tagged(
    {
        "audio/pcm": Obj(
            {"type": Enum("audio/pcm"), "rate": Either("24000", int=Number(24000, 24000, True))},
            defaults={"rate": 24000},
        ),
        "audio/pcmu": Obj({"type": Enum("audio/pcmu")}),
        "audio/pcma": Obj({"type": Enum("audio/pcma")}),
    }
)
VOICE = Either(
    "a string or an object",
    str=Str(max_len=64),
    dict=Obj({"id": Str(max_len=128)}, required=("id",)),
)
_MS = Number(0, 10_000, whole=True)
TURN_DETECTION = Tagged(
    {
        "server_vad": Obj(
            {
                "type": Enum("server_vad"),
                "threshold": Number(0.0, 1.0),
                "prefix_padding_ms": _MS,
                "silence_duration_ms": _MS,
                "create_response": Bool(),
                "interrupt_response": Bool(),
                "idle_timeout_ms": Number(5_000, 30_000, whole=True, nullable=True),
            },
            defaults={
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
                "create_response": True,
                "interrupt_response": True,
                "idle_timeout_ms": None,
            },
        ),
        "semantic_vad": Obj(
            {
                "type": Enum("semantic_vad"),
                "eagerness": Enum("low", "medium", "high", "auto"),
                "create_response": Bool(),
                "interrupt_response": Bool(),
            },
            defaults={"eagerness": "auto", "create_response": True, "interrupt_response": True},
        ),
    },
    nullable=True,
)
TRANSCRIPTION = Obj(
    {
        "model": Str(max_len=100),
        "language": Str(max_len=20),
        "prompt": Str(max_len=4096),
        "delay": Enum("minimal", "low", "medium", "high", "xhigh"),
        "keywords": Array(Str(max_len=100)),
        "languages": Array(Str(max_len=20)),
    },
    nullable=True,
)
NOISE_REDUCTION = Obj(
    {"type": Enum("near_field", "far_field"), "strength": Number(0.0, 1.0)}, nullable=True
)
AUDIO = Obj(
    {
        "input": Obj(
            {
                "format": AUDIO_FORMAT,
                "noise_reduction": NOISE_REDUCTION,
                "transcription": TRANSCRIPTION,
                "turn_detection": TURN_DETECTION,
            }
        ),
        "output": Obj(
            {"format": AUDIO_FORMAT, "voice": VOICE, "speed": Number(0.25, 1.5)},
        ),
    }
)
MAX_OUTPUT_TOKENS = Either("an integer or 'inf'", str=Enum("inf"), int=Number(1, 4096, whole=True))
TRACING = Either(
    "'auto' or an object",
    nullable=True,
    str=Enum("auto"),
    dict=Obj({"workflow_name": Str(), "group_id": Str(), "metadata": Anything()}),
)
TRUNCATION = Either(
    "a string or an object",
    str=Enum("auto", "disabled"),
    dict=Tagged(
        {
            "retention_ratio": Obj(
                {
                    "type": Enum("retention_ratio"),
                    "retention_ratio": Number(0.0, 1.0),
                    "token_limits": Obj({"post_instructions": Number(0, None, whole=True)}),
                },
                required=("retention_ratio",),
            )
        }
    ),
)
PROMPT = Obj(
    {"id": Str(), "version": Str(nullable=True), "variables": Anything(nullable=True)},
    required=("id",),
    nullable=True,
)
REASONING = Obj({"effort": Enum("minimal", "low", "medium", "high", "xhigh")})

SESSION = Obj(
    {
        "type": Enum("realtime"),
        "model": Str(max_len=100),
        "instructions": Str(max_len=256_000),
        "output_modalities": OneModality(),
        "max_output_tokens": MAX_OUTPUT_TOKENS,
        "audio": AUDIO,
        "tools": Tools(),
        "tool_choice": TOOL_CHOICE,
        "parallel_tool_calls": Bool(),
        "tracing": TRACING,
        "truncation": TRUNCATION,
        "prompt": PROMPT,
        "include": Array(Enum("item.input_audio_transcription.logprobs")),
        "reasoning": REASONING,
    },
    required=("type",),
)

_ITEM_COMMON = {"id": Str(max_len=64), "object": Enum("realtime.item")}
_STATUS = Enum("completed", "incomplete", "in_progress")
_TEXT_PART = {"type": Enum("input_text"), "text": Str()}


def _message(parts: Mapping[str, Obj], role: str) -> Obj:
    return Obj(
        {
            **_ITEM_COMMON,
            "type": Enum("message"),
            "role": Enum(role),
            "status": _STATUS,
            "content": Array(Tagged(parts), max_len=64),
        },
        required=("type", "role", "content"),
    )


_USER_PARTS = {
    "input_text": Obj(_TEXT_PART, required=("text",)),
    "input_audio": Obj(
        {"type": Enum("input_audio"), "audio": Str(), "transcript": Str(nullable=True)},
        required=("audio",),
    ),
    "input_image": Obj(
        {
            "type": Enum("input_image"),
            "image_url": Str(),
            "detail": Enum("auto", "low", "high"),
        },
        required=("image_url",),
    ),
}
_ASSISTANT_PARTS = {
    "output_text": Obj({"type": Enum("output_text"), "text": Str()}, required=("text",)),
    "output_audio": Obj(
        {"type": Enum("output_audio"), "audio": Str(), "transcript": Str(nullable=True)}
    ),
}


class Message(Shape):
    """A message item: its ``role`` picks the parts it may hold."""

    expected = "an object"
    roles: ClassVar[dict[str, Obj]] = {
        "user": _message(_USER_PARTS, "user"),
        "system": _message({"input_text": Obj(_TEXT_PART, required=("text",))}, "system"),
        "assistant": _message(_ASSISTANT_PARTS, "assistant"),
    }

    def check(self, value: Any, param: str) -> Any:
        if "role" not in value:
            raise RealtimeError(
                f"Missing required parameter: '{param}.role'.",
                code="missing_required_parameter",
                param=f"{param}.role",
            )
        role = value["role"]
        if not isinstance(role, str) or role not in self.roles:
            Enum(*self.roles).check(role, f"{param}.role")  # raises, naming the roles
        return self.roles[role].check(value, param)


FUNCTION_CALL = Obj(
    {
        **_ITEM_COMMON,
        "type": Enum("function_call"),
        "status": _STATUS,
        "name": Str(pattern=FUNCTION_NAME),
        "arguments": Str(),
        "call_id": Str(max_len=64),
    },
    required=("type", "name", "arguments"),
)
FUNCTION_CALL_OUTPUT = Obj(
    {
        **_ITEM_COMMON,
        "type": Enum("function_call_output"),
        "status": _STATUS,
        "call_id": Str(max_len=64),
        "output": Str(),
    },
    required=("type", "call_id", "output"),
)
ITEM = Tagged(
    {
        "message": Message(),  # type: ignore[dict-item]
        "function_call": FUNCTION_CALL,
        "function_call_output": FUNCTION_CALL_OUTPUT,
    }
)
ITEM_REFERENCE = Obj({"type": Enum("item_reference"), "id": Str()}, required=("id",))

RESPONSE = Obj(
    {
        "instructions": Str(max_len=256_000),
        "output_modalities": OneModality(),
        "max_output_tokens": MAX_OUTPUT_TOKENS,
        "metadata": Map(),
        "conversation": Enum("auto", "none"),
        "input": Array(Tagged({**ITEM.variants, "item_reference": ITEM_REFERENCE}), max_len=1024),
        "tools": Tools(),
        "tool_choice": TOOL_CHOICE,
        "parallel_tool_calls": Bool(),
        "audio": Obj({"output": Obj({"format": AUDIO_FORMAT, "voice": VOICE})}),
        "prompt": PROMPT,
        "reasoning": REASONING,
    }
)

# The containers a session.update merges into; every other field is replaced whole.
_MERGED = {"audio": {"input": {}, "output": {}}}


def merge(session: dict[str, Any], update: Mapping[str, Any], nested: Any = None) -> None:
    """Apply a checked ``update`` to ``session`` in place: containers merge, the rest replace."""
    nested = _MERGED if nested is None else nested
    for name, value in update.items():
        current = session.get(name)
        if name in nested and isinstance(value, dict) and isinstance(current, dict):
            merge(current, value, nested[name])
        else:
            session[name] = value
