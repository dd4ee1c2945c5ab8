"""One Realtime session: its settings, its conversation, its audio buffer, its response.

A session answers each client event with the events the real API sends, in its order::

    response.create  ->  response.created, response.output_item.added,
                         conversation.item.added, response.content_part.added,
                         response.output_text.delta (several), response.output_text.done,
                         response.content_part.done, response.output_item.done,
                         conversation.item.done, response.done, rate_limits.updated

A response streams on a task of its own, so the session keeps reading while it runs: that
is how a ``response.cancel`` can arrive in time (barge-in).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from .events import (
    Event,
    RealtimeError,
    audio_seconds,
    default_session,
    item_text,
    new_id,
    parse_client_event,
    server_event,
)
from .responder import Responder, stream

__all__ = ["Counts", "RealtimeSession"]

logger = logging.getLogger("workshop_lib.realtime")

Send = Callable[[Event], Awaitable[None]]


@dataclass
class Counts:
    """What the lesson's sessions did, for ``/api/stats``: counts only."""

    sessions: int = 0  # open now
    sessions_total: int = 0
    responses: int = 0
    deltas: int = 0
    cancelled: int = 0
    failed: int = 0
    errors: int = 0  # error events sent for bad client events


@dataclass
class _Response:
    id: str
    task: asyncio.Task[None] | None = None
    cancelled: bool = False
    params: dict[str, Any] = field(default_factory=dict)  # the response.create's response


class RealtimeSession:
    """The server side of one connection: feed it each message with :meth:`handle`.

    ``send`` writes one server event; ``responder`` makes the answers; ``delay`` seconds
    pass between deltas (so a cancel can land mid-stream, and a learner sees it stream).
    """

    def __init__(
        self,
        send: Send,
        responder: Responder,
        executor: Executor,
        counts: Counts,
        *,
        model: str = "workshop-local",
        delay: float = 0.05,
        max_items: int = 200,
        max_audio: int = 2 * 1024 * 1024,
        rate_limits: Callable[[], list[Event]] = list,
    ) -> None:
        self._send = send
        self.responder = responder
        self._executor = executor
        self.counts = counts
        self.delay = delay
        self.max_items = max_items  # the oldest items go first, as the API truncates
        self.max_audio = max_audio  # bytes of PCM the input buffer holds at most
        self.rate_limits = rate_limits  # what rate_limits.updated reports after a response
        self.session = default_session(model)
        self.conversation_id = new_id("conv")
        self.items: list[Event] = []
        self.audio = bytearray()
        self.response: _Response | None = None

    async def open(self) -> None:
        """Greet the client: ``session.created`` always comes first."""
        await self._send(server_event("session.created", session=self.session))

    async def handle(self, message: str | bytes) -> None:
        """Answer one client message; a bad one gets an ``error`` event, nothing worse."""
        try:
            event = parse_client_event(message)
            await self._dispatch(event)
        except RealtimeError as error:
            self.counts.errors += 1
            await self._send(error.event())

    async def close(self) -> None:
        """The connection ended: stop any response still streaming."""
        if self.response is not None and self.response.task is not None:
            self.response.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.response.task

    # -- the client's events -------------------------------------------------------------------

    async def _dispatch(self, event: Event) -> None:
        kind = event["type"]
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        if kind == "session.update":
            self.session.update(event["session"])
            self.session["type"] = "realtime"
            await self._send(server_event("session.updated", session=self.session))
        elif kind == "conversation.item.create":
            item = dict(event["item"])
            if item.get("id") is not None and any(i["id"] == item["id"] for i in self.items):
                raise RealtimeError(
                    f"An item with id {item['id']!r} is already in the conversation.",
                    code="duplicate_item_id",
                    param="item.id",
                    event_id=event_id,
                )
            await self._add_item(
                {**item, "id": item.get("id") or new_id("item"), "status": "completed"}
            )
        elif kind == "response.create":
            await self._start_response(event.get("response") or {}, event_id)
        elif kind == "response.cancel":
            await self._cancel(event.get("response_id"), event_id)
        elif kind == "input_audio_buffer.append":
            pcm = base64.b64decode(event["audio"])
            if len(self.audio) + len(pcm) > self.max_audio:
                raise RealtimeError(
                    f"The input audio buffer holds at most {self.max_audio} bytes "
                    f"({audio_seconds(self.max_audio):.0f} s): commit or clear it first.",
                    code="input_audio_buffer_full",
                    param="audio",
                    event_id=event_id,
                )
            self.audio += pcm  # no answer: the real API is silent here too
        elif kind == "input_audio_buffer.commit":
            await self._commit_audio(event_id)
        else:  # input_audio_buffer.clear
            self.audio.clear()
            await self._send(server_event("input_audio_buffer.cleared"))

    async def _add_item(self, item: Event) -> None:
        previous = self.items[-1]["id"] if self.items else None
        item = {"object": "realtime.item", **item}
        self.items.append(item)
        del self.items[: -self.max_items]
        await self._send(
            server_event("conversation.item.added", previous_item_id=previous, item=item)
        )
        await self._send(
            server_event("conversation.item.done", previous_item_id=previous, item=item)
        )

    async def _commit_audio(self, event_id: str | None) -> None:
        if not self.audio:
            raise RealtimeError(
                "Error committing input audio buffer: the buffer is empty. Append audio "
                "with input_audio_buffer.append first.",
                code="input_audio_buffer_commit_empty",
                event_id=event_id,
            )
        size, seconds = len(self.audio), audio_seconds(len(self.audio))
        self.audio.clear()
        item_id = new_id("item")
        previous = self.items[-1]["id"] if self.items else None
        await self._send(
            server_event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        )
        # In text mode nothing transcribes the audio; the transcript says what arrived.
        transcript = f"({seconds:.2f} s of audio, {size} bytes of PCM; not transcribed here)"
        await self._add_item(
            {
                "id": item_id,
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": transcript}],
            }
        )

    async def _cancel(self, response_id: str | None, event_id: str | None) -> None:
        active = self.response
        if active is None or (response_id is not None and response_id != active.id):
            raise RealtimeError(
                "Cancellation failed: no active response found"
                + (f" with id {response_id!r}." if response_id else "."),
                code="response_cancel_not_active",
                param="response_id" if response_id else None,
                event_id=event_id,
            )
        active.cancelled = True
        if active.task is not None:
            active.task.cancel()

    async def _start_response(self, params: Event, event_id: str | None) -> None:
        if self.response is not None:
            raise RealtimeError(
                f"Conversation already has an active response in progress: {self.response.id}. "
                "Wait until the response is finished before creating a new one, or cancel it.",
                code="conversation_already_has_active_response",
                event_id=event_id,
            )
        response = _Response(new_id("resp"), params=params)
        self.response = response
        response.task = asyncio.create_task(self._respond_safely(response))

    # -- a response --------------------------------------------------------------------------

    def _prompt(self, params: Event) -> str:
        """The text the responder answers: the last user message (or the given input)."""
        items = params.get("input") if isinstance(params.get("input"), list) else self.items
        users = [i for i in items if isinstance(i, dict) and i.get("role") == "user"]
        return item_text(users[-1]) if users else ""

    async def _respond_safely(self, response: _Response) -> None:
        try:
            await self._respond(response)
        except ConnectionClosed:
            pass  # the client left mid-answer: nobody to tell
        except Exception:  # a bug here must not pass silently, nor end the session's reads
            logger.exception("response %s failed", response.id)
        finally:
            if self.response is response:
                self.response = None

    async def _respond(self, response: _Response) -> None:
        params = response.params
        self.counts.responses += 1
        body: Event = {
            "object": "realtime.response",
            "id": response.id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": self.conversation_id,
            "output_modalities": ["text"],
            "max_output_tokens": params.get("max_output_tokens")
            or self.session.get("max_output_tokens", "inf"),
            "metadata": params.get("metadata"),
            "usage": None,
        }
        item: Event = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        where = {"response_id": response.id, "item_id": item["id"], "output_index": 0}
        prompt = self._prompt(params)
        text, status, details = "", "completed", None
        await self._send(server_event("response.created", response=body))
        await self._send(
            server_event(
                "response.output_item.added", response_id=response.id, output_index=0, item=item
            )
        )
        in_conversation = params.get("conversation", "auto") == "auto"
        previous = self.items[-1]["id"] if self.items else None
        if in_conversation:
            await self._send(
                server_event("conversation.item.added", previous_item_id=previous, item=item)
            )
        await self._send(
            server_event(
                "response.content_part.added",
                **where,
                content_index=0,
                part={"type": "text", "text": ""},
            )
        )
        limit = body["max_output_tokens"]
        try:
            async for chunk in stream(self.responder, prompt, self._executor):
                if limit != "inf" and len(text.split()) >= limit:
                    status, details = (
                        "incomplete",
                        {"type": "incomplete", "reason": "max_output_tokens"},
                    )
                    break
                text += chunk
                self.counts.deltas += 1
                await self._send(
                    server_event(
                        "response.output_text.delta", **where, content_index=0, delta=chunk
                    )
                )
                if self.delay:
                    await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            if not response.cancelled:
                raise  # the connection is closing: nothing left to tell
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # the cancel was the client's request: finish the events
            status, details = "cancelled", {"type": "cancelled", "reason": "client_cancelled"}
        except Exception as exc:  # the learner's responder: report it, keep the session
            logger.warning("responder failed in %s: %s", response.id, exc)
            status = "failed"
            details = {
                "type": "failed",
                "error": {"type": "server_error", "code": "responder_failed", "message": str(exc)},
            }
        finally:
            # No longer active once the streaming ends (not when the last event is sent): a
            # cancel that comes now gets response_cancel_not_active instead of cutting the
            # closing events short. _respond_safely clears it too, for a response that failed
            # before it streamed.
            if self.response is response:
                self.response = None
        self.counts.cancelled += status == "cancelled"
        self.counts.failed += status == "failed"
        part = {"type": "text", "text": text}
        await self._send(
            server_event("response.output_text.done", **where, content_index=0, text=text)
        )
        await self._send(
            server_event("response.content_part.done", **where, content_index=0, part=part)
        )
        item = {
            **item,
            "status": "completed" if status == "completed" else "incomplete",
            "content": [{"type": "output_text", "text": text}],
        }
        await self._send(
            server_event(
                "response.output_item.done", response_id=response.id, output_index=0, item=item
            )
        )
        if in_conversation:
            self.items.append(item)
            del self.items[: -self.max_items]
            await self._send(
                server_event("conversation.item.done", previous_item_id=previous, item=item)
            )
        # Counted in words here, not in a model's tokens: the shape is the API's.
        words_in, words_out = len(prompt.split()), len(text.split())
        usage = {
            "total_tokens": words_in + words_out,
            "input_tokens": words_in,
            "output_tokens": words_out,
            "input_token_details": {"text_tokens": words_in, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": words_out, "audio_tokens": 0},
        }
        done = {
            **body,
            "status": status,
            "status_details": details,
            "output": [item],
            "usage": usage,
        }
        await self._send(server_event("response.done", response=done))
        await self._send(server_event("rate_limits.updated", rate_limits=self.rate_limits()))
