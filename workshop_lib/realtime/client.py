"""Lesson 05 from the client's side: the events a client sends, and the SDK's two clients.

    await websocket.send(json.dumps(text_session()))   # answers in text, not audio
    await websocket.send(json.dumps(user_message("Hello")))
    client = openai_client(server)          # AsyncOpenAI pointed at the course's server
    async with client.realtime.connect(model="workshop-local", **LOCAL) as connection: ...

Pointing them at the real service instead is leaving out ``websocket_base_url`` (and, for
Azure, giving your resource's ``azure_endpoint``), with a real key.
"""

from __future__ import annotations

from typing import Any

from ..server.handle import ServerHandle

__all__ = ["LOCAL", "azure_client", "openai_client", "realtime_url", "text_session", "user_message"]

# The kernel's own loopback server: never through a proxy that HTTP(S)_PROXY names.
LOCAL: dict[str, Any] = {"websocket_connection_options": {"proxy": None}}

# Any key does on a server without a token; the SDK insists on one.
LOCAL_KEY = "local-key"


def text_session(**fields: Any) -> dict[str, Any]:
    """The ``session.update`` event a text client sends first: the service answers in audio
    (with a transcript beside it) unless the session asks for ``output_modalities: ["text"]``.
    """
    return {
        "type": "session.update",
        **fields,
        "session": {"type": "realtime", "output_modalities": ["text"]},
    }


def user_message(text: str, **fields: Any) -> dict[str, Any]:
    """The ``conversation.item.create`` event that adds a user's ``text`` to the conversation."""
    return {
        "type": "conversation.item.create",
        **fields,
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def realtime_url(server: ServerHandle, model: str = "workshop-local") -> str:
    """Where a plain WebSocket client dials, e.g. ``ws://127.0.0.1:8765/v1/realtime?model=...``."""
    return f"{server.links.ws('/v1/realtime')}?model={model}"


def openai_client(server: ServerHandle) -> Any:
    """``AsyncOpenAI`` talking to the course's server (its token is the key, if it has one)."""
    from openai import AsyncOpenAI  # imported here: the server side never needs the SDK

    return AsyncOpenAI(
        api_key=server.token or LOCAL_KEY,
        # HTTP calls (client.realtime.client_secrets.create()) go to the course's server too.
        base_url=server.links.url("/v1"),
        websocket_base_url=server.links.ws("/v1"),
        http_client=_direct(),
    )


def azure_client(server: ServerHandle, deployment: str = "workshop-local") -> Any:
    """``AsyncAzureOpenAI`` talking to the course's server, as it would to an Azure resource."""
    from openai import AsyncAzureOpenAI

    return AsyncAzureOpenAI(
        api_key=server.token or LOCAL_KEY,
        api_version="2025-08-28",
        # HTTP calls (client_secrets.create()) go here; the WebSocket to the next line.
        azure_endpoint=server.http_url,
        azure_deployment=deployment,
        websocket_base_url=server.links.ws("/openai"),
        http_client=_direct(),
    )


def _direct() -> Any:
    """The SDK's HTTP client, never through a proxy that HTTP(S)_PROXY names (as ``LOCAL``
    does for the WebSocket): the course's server is the kernel's own, or the room's."""
    from openai import DefaultAsyncHttpxClient

    return DefaultAsyncHttpxClient(trust_env=False)
