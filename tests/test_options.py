"""A server's settings are written once (ServerOptions), and every door to them agrees:
start_server's keywords, its options=, the App, and `python -m workshop_lib serve`."""

from __future__ import annotations

import inspect
import uuid
from dataclasses import fields

import pytest

from workshop_lib import start_server
from workshop_lib.__main__ import _parser, _server_options
from workshop_lib.app.app import App
from workshop_lib.server.options import ServerOptions, ServerSettings


def unique() -> str:
    return f"opts-{uuid.uuid4().hex[:8]}"


def test_the_keyword_types_are_the_fields_types():
    """ServerSettings (start_server's **settings) lists exactly ServerOptions' fields."""
    # Both modules postpone annotations: each type is the text written in the source.
    keywords = {
        name: getattr(hint, "__forward_arg__", hint)
        for name, hint in ServerSettings.__annotations__.items()
    }
    assert keywords == {f.name: f.type for f in fields(ServerOptions)}


def test_each_setting_says_what_it_means():
    docs = ServerOptions.docs()
    assert list(docs) == [f.name for f in fields(ServerOptions)]
    short = [name for name, doc in docs.items() if len(doc.split()) < 6]
    assert not short, f"settings without a sentence: {short}"


def test_keywords_and_an_options_object_build_the_same_server():
    settings = {"token": "sesame", "origins": ["https://hub.example.org"], "max_per_address": 3}
    with start_server(port=0, name=unique(), lessons=[], **settings) as by_keywords:
        assert by_keywords.app.options == ServerOptions(**settings)
    options = ServerOptions(**settings)
    with start_server(port=0, name=unique(), lessons=[], options=options) as by_object:
        assert by_object.app.options == options
        assert by_object.token == "sesame"
        assert (by_object.app.limits.total, by_object.app.limits.per_address) == (1000, 3)
        assert by_object.app.guard.origins == {"https://hub.example.org"}


def test_keywords_change_an_options_object():
    options = ServerOptions(token="sesame", max_connections=10)
    with start_server(
        port=0, name=unique(), lessons=[], options=options, max_connections=20
    ) as server:
        assert server.app.options == ServerOptions(token="sesame", max_connections=20)
        assert server.app.limits.total == 20


def test_origins_from_a_generator_are_kept():
    """A one-shot iterable is read once, into the frozen options."""
    options = ServerOptions(origins=(o for o in ["https://a.example", "https://b.example"]))
    assert options.origins == ("https://a.example", "https://b.example")
    assert App([], options).guard.origins == {"https://a.example", "https://b.example"}


def test_a_misspelt_setting_is_named_with_the_real_ones():
    with pytest.raises(TypeError, match=r"'hots'.*host, token, origins"):
        start_server(port=0, name=unique(), hots="0.0.0.0")


def test_the_token_stays_out_of_the_repr():
    assert "sesame" not in repr(ServerOptions(token="sesame"))


def test_help_in_a_notebook_spells_out_each_setting_with_its_default():
    """start_server? shows host='127.0.0.1' and the rest, not an opaque **settings."""
    parameters = inspect.signature(start_server).parameters
    for f in fields(ServerOptions):
        assert parameters[f.name].default == f.default, f.name
        assert parameters[f.name].kind is inspect.Parameter.KEYWORD_ONLY
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def test_the_command_lines_defaults_are_the_pythons():
    args = _parser().parse_args(["serve"])
    assert _server_options(args) == ServerOptions()


def test_the_command_line_passes_each_setting_on():
    args = _parser().parse_args(
        [
            "serve",
            "--host",
            "0.0.0.0",
            "--token",
            "sesame",
            "--origin",
            "https://a.example",
            "--origin",
            "https://b.example",
            "--max-connections",
            "40",
            "--max-per-address",
            "7",
            "--reuse-port",
        ]
    )
    assert _server_options(args) == ServerOptions(
        host="0.0.0.0",
        token="sesame",
        origins=("https://a.example", "https://b.example"),
        max_connections=40,
        max_per_address=7,
        reuse_port=True,
    )


def test_the_command_lines_help_is_the_settings_meaning():
    serve = next(
        action.choices["serve"]
        for action in _parser()._actions
        if getattr(action, "choices", None) and "serve" in action.choices
    )
    helps = {action.dest: action.help for action in serve._actions}
    for name in ("host", "token", "max_connections", "max_per_address", "reuse_port"):
        assert helps[name] == ServerOptions.doc(name)
    assert helps["origins"].startswith(ServerOptions.doc("origins"))


def test_new_token_makes_one_up():
    options = _server_options(_parser().parse_args(["serve", "--new-token"]))
    assert options.token is not None and len(options.token) >= 16
