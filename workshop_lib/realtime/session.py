"""One Realtime session: its settings, its conversation, its audio buffer, its response.

A session answers each client event with the events the real API sends, in its order::

    response.create  ->  response.created,
                         for a message:  response.output_item.added, conversation.item.added,
                                         response.content_part.added,
                                         response.output_text.delta (several),
                                         response.output_text.done, response.content_part.done,
                                         response.output_item.done, conversation.item.done
                         for a call:     response.output_item.added (arguments ""),
                                         conversation.item.added,
                                         response.function_call_arguments.delta (several),
                                         response.function_call_arguments.done,
                                         response.output_item.done, conversation.item.done
                         then            response.done, rate_limits.updated

A response streams on a task of its own, so the session keeps reading while it runs: that
is how a ``response.cancel`` can arrive in time (barge-in). A ``function_call_output`` starts
no response by itself: the client asks for the answer with ``response.create``.

Memory is bounded per session: the conversation keeps its last ``max_items`` items within
``max_item_bytes`` (the oldest go first, as the service truncates), and the audio buffer
holds ``max_audio`` bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed

from . import shapes
from .audio import AudioFormatError, decode, encode, samples_to_ms
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
from .responder import Context, Responder, ToolCall, on_loop, stream
from .speech import Speech, SpeechUnavailable, synthesize, tones
from .turns import Committed, IdleTimeout, SpeechStarted, SpeechStopped, TurnDetector, TurnEvent
from .wire import encode as _json  # an item's size: its JSON as json.dumps writes it
from .wire import event_json, quote

__all__ = ["Counts", "RealtimeSession", "updated"]

logger = logging.getLogger("workshop_lib.realtime")

Send = Callable[[Event], Awaitable[None]]

# A session's worst case: 256 KiB of items and 1 MiB of audio (docs/realtime.md, "Limits").
MAX_ITEMS = 200
MAX_ITEM_BYTES = 256 * 1024
MAX_AUDIO = 1024 * 1024
# The service refuses a commit of less audio than this.
MIN_COMMIT_MS = 100
# An answer's audio goes out in deltas of this many samples (200 ms at 24 kHz).
AUDIO_CHUNK = 4800
# Answers whose speech is remembered, for conversation.item.truncate (the latest ones).
SPOKEN_KEPT = 16


@dataclass
class Counts:
    """What the lesson's sessions did, for ``/api/stats``: counts only."""

    sessions: int = 0  # open now
    sessions_total: int = 0
    responses: int = 0
    spoken: int = 0  # of those, answered in audio (the default; text when asked for)
    deltas: int = 0
    calls: int = 0  # function calls the responses made
    cancelled: int = 0
    failed: int = 0
    errors: int = 0  # error events sent for bad client events


@dataclass
class _Response:
    id: str
    task: asyncio.Task[None] | None = None
    cancelled: bool = False
    params: dict[str, Any] = field(default_factory=dict)  # the response.create's response
    context: Context | None = None
    output: list[Event] = field(default_factory=list)
    done: bool = False  # response.done was sent
    # Begun in the handler (a responder on the loop): what the task takes over.
    writer: _Writer | None = None
    chunks: AsyncIterator[str | ToolCall] | None = None
    here: Iterator[str | ToolCall] | None = None  # or a runs_on_loop responder's, plain
    held: str | ToolCall | None = None  # a first chunk fetched, not yet written
    call: _Call | None = None  # a call whose first arguments piece is out
    raised: Exception | None = None  # what the first fetch raised
    paused: bool = False  # the first delta is out: a pause is owed before the next
    reason: str = "client_cancelled"  # why a cancel came: the client's, or turn_detected
    started: bool = False  # its task runs (a task cancelled before it starts runs nothing)
    audio_ms: int = 0  # of speech sent: the listener's playback time, for the idle timer


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
        max_items: int = MAX_ITEMS,
        max_item_bytes: int = MAX_ITEM_BYTES,
        max_audio: int = MAX_AUDIO,
        rate_limits: Callable[[], list[Event]] = list,
        flush: Callable[[], None] | None = None,
    ) -> None:
        self._send = send
        self.responder = responder
        self._executor = executor
        self.counts = counts
        self.delay = delay
        self.max_items = max_items  # the oldest items go first, as the API truncates
        self.max_item_bytes = max_item_bytes
        self.max_audio = max_audio  # bytes of PCM the input buffer holds at most
        self.rate_limits = rate_limits  # what rate_limits.updated reports after a response
        # Where the events sent so far should leave at once (a writer that batches them):
        # after each client event, and before a response pauses.
        self.flush = flush or _nothing
        # A send that takes JSON text too (the server's EventWriter): the events a response
        # sends most go as text built from their fixed shape, an item's JSON is encoded
        # once for all the events that carry it, and a delta before a pause is written at
        # once. Any other send gets every event as a dict, as before.
        self._as_text = bool(getattr(send, "takes_text", False))
        self._write_now: Callable[[str], bool] | None = getattr(
            getattr(send, "__self__", None), "write_now", None
        )
        self.session = default_session(model)
        self.conversation_id = new_id("conv")
        self.items: list[Event] = []
        self._sizes: dict[str, int] = {}  # each item's size in JSON, for max_item_bytes
        self._total = 0  # their sum, kept as they change (not summed at every insert)
        self.audio = bytearray()
        self.response: _Response | None = None
        self._received = 0  # bytes of 24 kHz PCM16 appended this session: the input clock
        self.detector: TurnDetector | None = None  # while turn_detection is on
        self._vad_origin = 0  # samples received before the detector started
        self._audio_started = False  # the first input_audio_buffer.append came
        self._turn_item: str | None = None  # the id speech_started promised
        self._heard: dict[str, int] = {}  # a user audio item's length in ms
        self._spoken: dict[str, tuple[Speech, int]] = {}  # answer item: its speech, ms sent

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
        self.flush()

    async def close(self) -> None:
        """The connection ended: stop any response still streaming."""
        if self.response is not None and self.response.task is not None:
            self.response.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.response.task

    # -- the client's events -------------------------------------------------------------------

    async def _dispatch(self, event: Event) -> None:
        kind = event["type"]
        event_id = event.get("event_id")
        try:
            if kind == "session.update":
                await self._update_session(event["session"])
            elif kind == "conversation.item.create":
                await self._create_item(event["item"], event.get("previous_item_id", ...))
            elif kind == "conversation.item.retrieve":
                item = self._find(event["item_id"], "item_id", "retrieving")
                await self._send(server_event("conversation.item.retrieved", item=item))
            elif kind == "conversation.item.delete":
                item = self._find(event["item_id"], "item_id", "deleting")
                self._remove(item)
                await self._send(server_event("conversation.item.deleted", item_id=item["id"]))
            elif kind == "conversation.item.truncate":
                await self._truncate(event["item_id"], event["audio_end_ms"])
            elif kind == "response.create":
                await self._start_response(event.get("response") or {})
            elif kind == "response.cancel":
                await self._cancel(event.get("response_id"))
            elif kind == "input_audio_buffer.append":
                await self._append(event["audio"])
            elif kind == "input_audio_buffer.commit":
                await self._commit_audio()
            else:  # input_audio_buffer.clear
                self.audio.clear()
                if self.detector is not None:
                    self.detector.clear()
                await self._send(server_event("input_audio_buffer.cleared"))
        except RealtimeError as error:
            error.event_id = event_id
            raise

    async def _update_session(self, update: Event) -> None:
        self.apply(update)
        await self._send(server_event("session.updated", session=self.session))

    def apply(self, update: Event) -> None:
        """Apply checked session settings (an update's, an ephemeral key's); sends nothing."""
        self.session = updated(self.session, update)
        self._configure_turns()

    def _configure_turns(self) -> None:
        """A detector while ``turn_detection`` is on (``semantic_vad`` is heard as
        ``server_vad`` with its defaults: nothing here understands the words)."""
        settings = self.session["audio"]["input"]["turn_detection"]
        if settings is None:
            self.detector = None
            return
        args = (
            settings.get("threshold", 0.5),
            settings.get("prefix_padding_ms", 300),
            settings.get("silence_duration_ms", 500),
            settings.get("idle_timeout_ms"),
        )
        if self.detector is not None:
            self.detector.configure(*args)
        elif self._audio_started or args[3] is not None:
            # Its clock is the audio received: until the first audio (or an idle timer, which
            # runs from now) it hears nothing. A text session, where it is on by default as
            # on the service, never appends audio and never pays its ~50 KB.
            self.detector = TurnDetector(*args)
            self._vad_origin = self._received // 2

    def _find(self, item_id: str, param: str, doing: str) -> Event:
        for item in self.items:
            if item["id"] == item_id:
                return item
        raise RealtimeError(
            f"Error {doing} item: the item with id '{item_id[:64]}' does not exist.",
            code="item_not_found",
            param=param,
        )

    async def _create_item(self, item: Event, previous: Any) -> None:
        if item.get("id") is not None and any(i["id"] == item["id"] for i in self.items):
            raise RealtimeError(
                f"An item with id {item['id']!r} is already in the conversation.",
                code="duplicate_item_id",
                param="item.id",
            )
        if previous is not ... and previous not in (None, "root"):
            self._find(previous, "previous_item_id", "inserting after")
        kind = item["type"]
        if kind == "function_call_output" and not any(
            i["type"] == "function_call" and i.get("call_id") == item["call_id"] for i in self.items
        ):
            raise RealtimeError(
                f"No tool call found for function call output with call_id "
                f"'{item['call_id']}'. A function_call_output answers a function_call of this "
                "conversation: copy the call_id from the call.",
                code="invalid_value",
                param="item.call_id",
            )
        for index, part in enumerate(item.get("content", [])):
            if part["type"] == "input_audio":
                _check_base64(part["audio"], f"item.content[{index}].audio")
        item = {"id": new_id("item"), **item, "object": "realtime.item", "status": "completed"}
        # The route takes 15 MiB events (audio); the conversation keeps its 256 KiB.
        item_json = _json(item)
        size = len(item_json)
        if size > self.max_item_bytes:
            raise RealtimeError(
                f"This item is {size} bytes as JSON; the local server's conversation holds "
                f"at most {self.max_item_bytes} bytes: send audio with "
                "input_audio_buffer.append (and commit it), or a shorter item.",
                code="item_too_large",
                param="item",
            )
        if kind == "function_call" and not item.get("call_id"):
            item["call_id"] = new_id("call")
        where = len(self.items)
        if previous == "root":
            where = 0
        elif isinstance(previous, str):
            where = next(i for i, x in enumerate(self.items) if x["id"] == previous) + 1
        await self._added_and_done(item, where, item_json)

    async def _added_and_done(self, item: Event, where: int, item_json: str | None = None) -> None:
        """A client's item, whole at once: added and done together (``item_json``: its JSON,
        if known)."""
        item_json = _json(item) if item_json is None else item_json
        before = self._insert(item, where, len(item_json))
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self._item_event(kind, before, item, item_json)

    async def _item_event(self, kind: str, before: str | None, item: Event, item_json: str) -> None:
        """A ``conversation.item.*`` event carrying ``item`` (whose JSON is ``item_json``)."""
        if self._as_text:
            previous = "null" if before is None else quote(before)
            fields = f'"previous_item_id": {previous}, "item": {item_json}'
            await self._send(event_json(kind, fields))
        else:
            await self._send(server_event(kind, previous_item_id=before, item=item))

    async def _delta(self, text: str, event: Callable[[], Event], pause: bool) -> None:
        """A delta (``text``: its JSON; ``event()``: the same as a dict), then the session's
        pause if ``pause``: written at once before it, not a loop turn later."""
        pause = pause and bool(self.delay)
        if self._as_text:
            if not (pause and self._write_now is not None and self._write_now(text)):
                await self._send(text)
        else:
            await self._send(event())
        if pause:
            self.flush()
            await asyncio.sleep(self.delay)

    def _insert(self, item: Event, where: int, size: int | None = None) -> str | None:
        """Put ``item`` at ``where``; the oldest go while over the caps. Its predecessor's id.

        ``size``: its length in JSON, when the caller measured it already.
        """
        self.items.insert(where, item)
        self._resize(item["id"], len(_json(item)) if size is None else size)
        before = self.items[where - 1]["id"] if where > 0 else None
        while len(self.items) > self.max_items or (
            len(self.items) > 1 and self._total > self.max_item_bytes
        ):
            self._remove(self.items[0])
        return before

    def _remove(self, item: Event) -> None:
        self.items.remove(item)
        self._total -= self._sizes.pop(item["id"], 0)

    def _resize(self, item_id: str, size: int) -> None:
        self._total += size - self._sizes.get(item_id, 0)
        self._sizes[item_id] = size

    def _replace(self, item: Event, size: int | None = None) -> int:
        """An item the response finished: the conversation holds its final form. Its index
        (0 if it is gone); ``size``: its JSON's length, if known."""
        for index, old in enumerate(self.items):
            if old["id"] == item["id"]:
                self.items[index] = item
                self._resize(item["id"], len(_json(item)) if size is None else size)
                return index
        return 0

    async def _append(self, audio: str) -> None:
        """Audio in: into the buffer (as 24 kHz PCM16), and through turn detection."""
        fmt = self.session["audio"]["input"]["format"]["type"]
        raw = base64.b64decode(audio)
        if fmt == "audio/pcm":
            pcm = raw
        else:
            try:
                pcm = encode(decode(raw, fmt))
            except AudioFormatError as exc:
                raise RealtimeError(str(exc), param="audio") from None
        if len(self.audio) + len(pcm) > self.max_audio:
            raise RealtimeError(
                f"The input audio buffer holds at most {self.max_audio} bytes "
                f"({audio_seconds(self.max_audio):.0f} s): commit or clear it first.",
                code="input_audio_buffer_full",
                param="audio",
            )
        if not self._audio_started:
            self._audio_started = True
            self._configure_turns()
        self.audio += pcm  # no answer: the real API is silent here too
        self._received += len(pcm)
        if self.detector is not None:
            whole = len(pcm) // 2 * 2  # an odd byte is not a sample
            samples = np.frombuffer(pcm[:whole], "<i2")
            for turn in self.detector.feed(samples):
                await self._turn(turn)

    async def _turn(self, turn: TurnEvent) -> None:
        """One of turn detection's events: the API's event, and what follows from it."""
        settings = self.session["audio"]["input"]["turn_detection"] or {}
        origin = samples_to_ms(self._vad_origin)
        if isinstance(turn, SpeechStarted):
            self._turn_item = new_id("item")
            await self._send(
                server_event(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=origin + turn.audio_start_ms,
                    item_id=self._turn_item,
                )
            )
            active = self.response
            if settings.get("interrupt_response", True) and active and not active.cancelled:
                active.reason = "turn_detected"
                await self._cancel(active.id)
        elif isinstance(turn, SpeechStopped):
            self._turn_item = self._turn_item or new_id("item")
            await self._send(
                server_event(
                    "input_audio_buffer.speech_stopped",
                    audio_end_ms=origin + turn.audio_end_ms,
                    item_id=self._turn_item,
                )
            )
        elif isinstance(turn, Committed):
            # The buffer's first byte is this far into the session's audio.
            first = self._received - len(self.audio)
            start = max(0, (self._vad_origin + turn.start_sample) * 2 - first)
            end = max(start, (self._vad_origin + turn.end_sample) * 2 - first)
            pcm = bytes(self.audio[start:end])
            del self.audio[:end]  # what follows stays: the next turn's
            item_id, self._turn_item = self._turn_item or new_id("item"), None
            await self._commit(pcm, item_id)
            if settings.get("create_response", True):
                await self._auto_respond()
        elif isinstance(turn, IdleTimeout):
            item_id = new_id("item")
            await self._send(
                server_event(
                    "input_audio_buffer.timeout_triggered",
                    audio_start_ms=origin + turn.audio_start_ms,
                    audio_end_ms=origin + turn.audio_end_ms,
                    item_id=item_id,
                )
            )
            # As the service does: the (silent) buffer becomes the user's turn, and an answer.
            pcm = bytes(self.audio)
            self.audio.clear()
            await self._commit(pcm, item_id)
            await self._auto_respond()

    async def _auto_respond(self) -> None:
        """A response to the turn just committed, once a cancelled one has finished."""
        active = self.response
        if active is not None:
            if not active.cancelled or active.task is None:
                return  # an answer still speaks (interrupt_response off): the turn waits
            with contextlib.suppress(asyncio.CancelledError):
                await active.task
        if self.response is None:
            await self._start_response({})

    async def _commit_audio(self) -> None:
        """The client's own commit (push-to-talk): at least 100 ms of audio."""
        if self.detector is not None:
            self.detector.clear()
        ms = audio_seconds(len(self.audio)) * 1000
        if ms < MIN_COMMIT_MS:
            raise RealtimeError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        pcm = bytes(self.audio)
        self.audio.clear()
        await self._commit(pcm, new_id("item"))

    async def _commit(self, pcm: bytes, item_id: str) -> None:
        """``pcm`` becomes the user's audio item: committed, added, done (no transcript:
        nothing here recognizes speech, and it invents none)."""
        previous = self.items[-1]["id"] if self.items else None
        await self._send(
            server_event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        )
        self._heard[item_id] = round(audio_seconds(len(pcm)) * 1000)
        while len(self._heard) > self.max_items:
            del self._heard[next(iter(self._heard))]
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self._added_and_done(item, len(self.items))
        if self.session["audio"]["input"]["transcription"] is not None:
            await self._send(
                server_event(
                    "conversation.item.input_audio_transcription.failed",
                    item_id=item_id,
                    content_index=0,
                    error={
                        "type": "transcription_error",
                        "code": "transcription_unavailable",
                        "message": "The local server does not recognize speech: it cannot "
                        "transcribe audio. Your responder gets the audio's length "
                        "(context.audio_ms), or plug in a transcriber of your own.",
                        "param": None,
                    },
                )
            )

    async def _truncate(self, item_id: str, audio_end_ms: int) -> None:
        """Cut an answer to what the listener heard: its transcript, to ``audio_end_ms``."""
        item = self._find(item_id, "item_id", "truncating")
        spoken = self._spoken.get(item_id)
        if spoken is None:
            raise RealtimeError(
                "Only an assistant message with audio can be truncated; item "
                f"'{item_id[:64]}' has none.",
                code="invalid_value",
                param="item_id",
            )
        speech, sent_ms = spoken
        if audio_end_ms > sent_ms:
            raise RealtimeError(
                f"Audio content of {sent_ms}ms is already shorter than {audio_end_ms}ms.",
                code="invalid_value",
                param="audio_end_ms",
            )
        heard = speech.text_until(audio_end_ms)
        self._replace({**item, "content": [{"type": "output_audio", "transcript": heard}]})
        await self._send(
            server_event(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=0,
                audio_end_ms=audio_end_ms,
            )
        )

    async def _cancel(self, response_id: str | None) -> None:
        active = self.response
        if active is None or (response_id is not None and response_id != active.id):
            raise RealtimeError(
                "Cancellation failed: no active response found"
                + (f" with id {response_id!r}." if response_id else "."),
                code="response_cancel_not_active",
                param="response_id" if response_id else None,
            )
        active.cancelled = True
        # A task not yet started sees the flag when it starts; cancelled now, it would never
        # run at all, and nothing would end the response.
        if active.task is not None and active.started:
            active.task.cancel()

    async def _start_response(self, params: Event) -> None:
        if self.response is not None:
            raise RealtimeError(
                f"Conversation already has an active response in progress: {self.response.id}. "
                "Wait until the response is finished before creating a new one, or cancel it.",
                code="conversation_already_has_active_response",
            )
        response = _Response(new_id("resp"), params=params, context=self._context(params))
        self.response = response
        if self.detector is not None:
            self.detector.stop_idle()  # the timer runs again once the answer has played
        here = on_loop(self.responder, response.context)
        if here is not None:
            # A responder that never blocks starts here, in this loop turn: the response's
            # opening events and its first delta leave now, not a turn later from the task.
            try:
                await self._begin(response, here)
                await self._first(response, here)
            except BaseException:
                self.response = None
                raise
        response.task = asyncio.create_task(self._respond_safely(response))

    async def _begin(self, response: _Response, here: Iterator[str | ToolCall] | None) -> None:
        """``response.created``, and the response's writer and chunks (``here``: a
        responder's that runs on the loop, else they come from :func:`stream`)."""
        assert response.context is not None
        self.counts.responses += 1
        self.counts.spoken += self._modality(response.params) == "audio"
        await self._send(server_event("response.created", response=self._body(response)))
        response.writer = _Writer(self, response)
        if here is not None:
            response.here = here
        else:
            response.chunks = aiter(stream(self.responder, response.context, self._executor))

    async def _first(self, response: _Response, here: Iterator[str | ToolCall]) -> None:
        """The first chunk: a text delta is written at once, the rest left to the task."""
        assert response.writer is not None
        try:
            chunk = next(here)
        except StopIteration:
            return
        except Exception as exc:  # reported by the task, as any responder's failure
            response.raised = exc
            return
        if isinstance(chunk, ToolCall):
            response.call = await response.writer.open_call(chunk)
            await response.writer.piece(response.call, 0)
        elif chunk:
            await response.writer.text(chunk, pause=False)
            if response.writer.audio:
                return  # gathered to be spoken, not sent: no delta is out, no pause is owed
        else:
            response.held = chunk
            return
        response.paused = True

    def _context(self, params: Event) -> Context:
        """What the responder is asked: the response's own settings win over the session's."""
        tools = params.get("tools", self.session["tools"])
        choice = params.get("tool_choice", self.session["tool_choice"])
        _check_choice(tools, choice, "response" if "tool_choice" in params else "session")
        if "input" in params:
            items = []
            for index, entry in enumerate(params["input"]):
                if entry["type"] == "item_reference":
                    items.append(self._find(entry["id"], f"response.input[{index}].id", "finding"))
                else:
                    items.append(entry)
        else:
            items = list(self.items)
        users = [i for i in items if i.get("type") == "message" and i.get("role") == "user"]
        return Context(
            item_text(users[-1]) if users else "",
            audio_ms=self._audio_ms(users[-1]) if users else None,
            items=items,
            instructions=params.get("instructions", self.session.get("instructions") or ""),
            tools=tools,
            tool_choice=choice,
            parallel_tool_calls=params.get(
                "parallel_tool_calls", self.session.get("parallel_tool_calls", True)
            ),
        )

    def _audio_ms(self, item: Event) -> int | None:
        """How long a user message's audio is, when it is audio (else None)."""
        parts = [p for p in item.get("content", []) if p.get("type") == "input_audio"]
        if not parts:
            return None
        if item["id"] in self._heard:
            return self._heard[item["id"]]
        size = sum(len(p.get("audio") or "") * 3 // 4 for p in parts)
        return round(audio_seconds(size) * 1000)

    def _modality(self, params: Event) -> str:
        return (params.get("output_modalities") or self.session["output_modalities"])[0]

    # -- a response --------------------------------------------------------------------------

    async def _respond_safely(self, response: _Response) -> None:
        response.started = True
        try:
            await self._respond(response)
        except ConnectionClosed:
            pass  # the client left mid-answer: nobody to tell
        except Exception:  # a bug here must not pass silently, nor leave the client waiting
            logger.exception("response %s failed", response.id)
            if not response.done:
                with contextlib.suppress(Exception):
                    await self._finish(
                        response,
                        "failed",
                        {
                            "type": "failed",
                            "error": {
                                "type": "server_error",
                                "code": "server_error",
                                "message": "The local server failed making this response.",
                            },
                        },
                    )
        finally:
            if self.response is response:
                self.response = None

    def _body(self, response: _Response) -> Event:
        params = response.params
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": self.conversation_id
            if params.get("conversation", "auto") == "auto"
            else None,
            "output_modalities": [self._modality(params)],
            "max_output_tokens": params.get("max_output_tokens")
            or self.session.get("max_output_tokens", "inf"),
            "metadata": params.get("metadata"),
            "usage": None,
        }

    async def _respond(self, response: _Response) -> None:
        """Stream the response to its end, then close its items and send ``response.done``."""
        if response.writer is None:
            await self._begin(response, None)
        writer = response.writer
        assert writer is not None
        try:
            status, details = await self._stream(response, writer)
        finally:
            # No longer active once the streaming ends (not when the last event is sent): a
            # cancel that comes now gets response_cancel_not_active instead of cutting the
            # closing events short.
            if self.response is response:
                self.response = None
        await self._close_items(writer, status == "completed")
        await self._finish(response, status, details)

    async def _stream(self, response: _Response, writer: _Writer) -> tuple[str, Event | None]:
        """The responder's chunks as events, until they end, a cancel, a failure or the
        output limit: the response's status and its ``status_details``."""
        limit = self._body(response)["max_output_tokens"]
        status, details = "completed", None
        try:
            chunks = await self._resume(response, writer)
            async for chunk in chunks:
                if limit != "inf" and writer.words >= limit:
                    status = "incomplete"
                    details = {"type": "incomplete", "reason": "max_output_tokens"}
                    break
                if isinstance(chunk, ToolCall):
                    await writer.call(chunk)
                else:
                    await writer.text(chunk)
            await writer.speak()  # what an answer in audio gathered, said (cut, or whole)
        except asyncio.CancelledError:
            if not response.cancelled:
                raise  # the connection is closing: nothing left to tell
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # the cancel was the client's request: finish the events
            return "cancelled", {"type": "cancelled", "reason": response.reason}
        except Exception as exc:  # the learner's responder: report it, keep the session
            logger.warning("the responder raised in %s: %s", response.id, exc)
            return "failed", {
                "type": "failed",
                "error": {"type": "server_error", "code": "responder_failed", "message": str(exc)},
            }
        return status, details

    async def _resume(self, response: _Response, writer: _Writer) -> AsyncIterator[str | ToolCall]:
        """Take over what the handler began (:meth:`_first`): the pause owed after a first
        delta, its failure, the rest of a call's arguments; the chunks still to come."""
        chunks = response.chunks if response.here is None else _each(response.here)
        assert chunks is not None
        if response.cancelled:  # before it started
            raise asyncio.CancelledError
        if response.paused and self.delay:
            await asyncio.sleep(self.delay)
        if response.raised is not None:
            raise response.raised
        if response.call is not None:
            await writer.finish_call(response.call, 1)
        if response.held is not None:
            return _after(response.held, chunks)
        return chunks

    async def _close_items(self, writer: _Writer, completed: bool) -> None:
        """The response's open call and message end; an answer that said nothing is still
        an empty message, as the service sends."""
        await writer.stop_call()
        await writer.close(completed)
        if not writer.items:
            await writer.text("")
            await writer.close(completed)

    async def _finish(self, response: _Response, status: str, details: Event | None) -> None:
        self.counts.cancelled += status == "cancelled"
        self.counts.failed += status == "failed"
        # Counted in words here, not in a model's tokens: the shape is the API's.
        context = response.context or ""
        words_in = len(context.split())
        words_out = sum(
            len(item_text(i).split()) + len(i.get("arguments", "").split()) for i in response.output
        )
        usage = {
            "total_tokens": words_in + words_out,
            "input_tokens": words_in,
            "output_tokens": words_out,
            "input_token_details": {"text_tokens": words_in, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": words_out, "audio_tokens": 0},
        }
        done = {
            **self._body(response),
            "status": status,
            "status_details": details,
            "output": response.output,
            "usage": usage,
        }
        response.done = True
        if self.detector is not None:
            # The service starts the idle timer once the answer has played out.
            self.detector.restart_idle(self.detector.now_ms + response.audio_ms)
        await self._send(server_event("response.done", response=done))
        await self._send(server_event("rate_limits.updated", rate_limits=self.rate_limits()))
        self.flush()


class _Writer:
    """A response's output items as they stream: text runs become messages, calls calls."""

    def __init__(self, session: RealtimeSession, response: _Response) -> None:
        self.session = session
        self.response = response
        self.in_conversation = response.params.get("conversation", "auto") == "auto"
        self.items: list[Event] = []
        self.message: Event | None = None  # the message item being written, if any
        self.words = 0
        self._text = ""
        self._head = ""  # the open message's delta, as JSON, up to its text
        self.calling: _Call | None = None  # a call whose arguments are still streaming
        self.sent = 0  # of its pieces
        # In audio, a message's text is gathered, then spoken: audio and transcript deltas.
        self.audio = session._modality(response.params) == "audio"
        output = response.params.get("audio", {}).get("output", {})
        fmt = output.get("format") or session.session["audio"]["output"]["format"]
        self.format = fmt["type"]
        self._spoken = False  # the open message's speech went out
        self._said = ""  # of its transcript

    def _where(self, item: Event) -> Event:
        return {
            "response_id": self.response.id,
            "item_id": item["id"],
            "output_index": len(self.items) - 1,
        }

    async def _output_item(self, kind: str, item: Event, item_json: str) -> None:
        """``response.output_item.added`` or ``.done`` for ``item`` (its JSON: ``item_json``)."""
        session, index = self.session, len(self.items) - 1
        if session._as_text:
            fields = f'"response_id": {quote(self.response.id)}, "output_index": {index}, '
            await session._send(event_json(kind, f'{fields}"item": {item_json}'))
        else:
            await session._send(
                server_event(kind, response_id=self.response.id, output_index=index, item=item)
            )

    async def _open(self, item: Event) -> None:
        session = self.session
        self.items.append(item)
        item_json = _json(item)  # once, for both events and the conversation's size
        await self._output_item("response.output_item.added", item, item_json)
        if self.in_conversation:
            before = session._insert(dict(item), len(session.items), len(item_json))
            await session._item_event("conversation.item.added", before, item, item_json)

    async def _done(self, item: Event) -> None:
        session = self.session
        item_json = _json(item)
        await self._output_item("response.output_item.done", item, item_json)
        self.response.output.append(item)
        if self.in_conversation:
            index = session._replace(item, len(item_json))
            before = session.items[index - 1]["id"] if index > 0 else None
            await session._item_event("conversation.item.done", before, item, item_json)

    async def text(self, chunk: str, *, pause: bool = True) -> None:
        """One text delta: opens a message item first if none is open.

        ``pause``: then wait the session's ``delay`` (the caller waits it otherwise).
        """
        send = self.session._send
        if self.message is None:
            self.message = {
                "id": new_id("item"),
                "object": "realtime.item",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            self._text, self._said, self._spoken = "", "", False
            await self._open(self.message)
            # Where this message's part is, as JSON: its events repeat it, only the rest changes.
            where = (
                f'"response_id": {quote(self.response.id)}, "item_id": '
                f'{quote(self.message["id"])}, "output_index": {len(self.items) - 1}, '
                '"content_index": 0, '
            )
            self._head = where + '"delta": '
            part = (
                {"type": "audio", "transcript": ""} if self.audio else {"type": "text", "text": ""}
            )
            kind = "response.content_part.added"
            if self.session._as_text:
                await send(event_json(kind, f'{where}"part": {_json(part)}'))
            else:
                await send(
                    server_event(kind, **self._where(self.message), content_index=0, part=part)
                )
        if not chunk:
            return
        self._text += chunk
        self.words += len(chunk.split())  # counted as it comes: the text may be long
        if self.audio:
            return  # spoken whole by speak(): the words' timings need the whole sentence
        self.session.counts.deltas += 1
        kind = "response.output_text.delta"
        await self.session._delta(
            event_json(kind, self._head + quote(chunk)),
            lambda: server_event(kind, **self._where(self.message), content_index=0, delta=chunk),
            pause,
        )

    async def speak(self) -> None:
        """Say the open message: its speech in audio deltas, each word's transcript delta
        sent as the audio reaches the word. Paced by the session's ``delay``."""
        if not self.audio or self.message is None or self._spoken:
            return
        self._spoken = True
        session, where = self.session, self._where(self.message)
        loop = asyncio.get_running_loop()
        speech = await loop.run_in_executor(session._executor, _voice, self._text)
        # Truncate needs the words' timings, not the samples: a session keeps no audio.
        timings = dataclasses.replace(speech, samples=np.zeros(0, np.int16))
        session._spoken[self.message["id"]] = (timings, 0)
        while len(session._spoken) > SPOKEN_KEPT:
            del session._spoken[next(iter(session._spoken))]
        wire = encode(speech.samples, self.format)
        per_chunk = len(wire) * AUDIO_CHUNK // max(1, len(speech.samples))
        text, total = self._text, len(speech.samples)
        for start in range(0, total, AUDIO_CHUNK):
            end = min(total, start + AUDIO_CHUNK)
            words = [w for w in speech.words if w.start_sample < end]
            upto = words[-1].end_char if words else 0
            if end == total:
                upto = len(text)
            if upto > len(self._said):
                delta, self._said = text[len(self._said) : upto], text[:upto]
                await session._send(
                    server_event(
                        "response.output_audio_transcript.delta",
                        **where,
                        content_index=0,
                        delta=delta,
                    )
                )
            piece = wire[start * per_chunk // AUDIO_CHUNK : end * per_chunk // AUDIO_CHUNK]
            if end == total:
                piece = wire[start * per_chunk // AUDIO_CHUNK :]
            session.counts.deltas += 1
            await session._send(
                server_event(
                    "response.output_audio.delta",
                    **where,
                    content_index=0,
                    delta=base64.b64encode(piece).decode(),
                )
            )
            sent_ms = samples_to_ms(end)
            session._spoken[self.message["id"]] = (timings, sent_ms)
            self.response.audio_ms += samples_to_ms(end - start)
            if session.delay and end < total:
                session.flush()
                await asyncio.sleep(session.delay)

    async def close(self, completed: bool) -> None:
        """Finish the message being written, if one is open."""
        if self.message is None:
            return
        if self.audio:
            await self._close_audio(completed)
            return
        where, text = self._where(self.message), self._text
        await self.session._send(
            server_event("response.output_text.done", **where, content_index=0, text=text)
        )
        await self._end_part(
            {"type": "text", "text": text}, {"type": "output_text", "text": text}, completed
        )

    async def _close_audio(self, completed: bool) -> None:
        """An answer in audio ends: its audio, its transcript (what was said), its part."""
        assert self.message is not None
        send, where, said = self.session._send, self._where(self.message), self._said
        await send(server_event("response.output_audio.done", **where, content_index=0))
        await send(
            server_event(
                "response.output_audio_transcript.done", **where, content_index=0, transcript=said
            )
        )
        await self._end_part(
            {"type": "audio", "transcript": said},
            {"type": "output_audio", "transcript": said},
            completed,
        )

    async def _end_part(
        self, part: dict[str, Any], content: dict[str, Any], completed: bool
    ) -> None:
        """The message's one part is done (``part`` as the event shows it, ``content`` as the
        item holds it), and so is the message."""
        assert self.message is not None
        await self.session._send(
            server_event(
                "response.content_part.done",
                **self._where(self.message),
                content_index=0,
                part=part,
            )
        )
        item = {
            **self.message,
            "status": "completed" if completed else "incomplete",
            "content": [content],
        }
        self.message = None
        await self._done(item)

    async def call(self, call: ToolCall) -> None:
        """A function call: its item, its arguments in pieces, then the whole."""
        await self.finish_call(await self.open_call(call), 0)

    async def open_call(self, call: ToolCall) -> _Call:
        """A call's item, added (``arguments: ""``): nothing of its arguments yet."""
        await self.speak()
        await self.close(True)
        arguments = call.arguments_json()
        item = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": new_id("call"),
            "arguments": "",
        }
        await self._open(item)
        self.session.counts.calls += 1
        where = {**self._where(item), "call_id": item["call_id"]}
        head = _json(where)[1:-1] + ', "delta": '  # what each arguments delta repeats
        pieces = _pieces(arguments)
        self.calling, self.sent = _Call(call.name, arguments, item, where, pieces, head), 0
        return self.calling

    async def piece(self, state: _Call, index: int, *, pause: bool = False) -> None:
        """One ``response.function_call_arguments.delta`` (then the session's pause)."""
        self.session.counts.deltas += 1
        self.sent = index + 1
        kind, delta = "response.function_call_arguments.delta", state.pieces[index]
        await self.session._delta(
            event_json(kind, state.head + quote(delta)),
            lambda: server_event(kind, **state.where, delta=delta),
            pause,
        )

    async def finish_call(self, state: _Call, start: int) -> None:
        """The arguments from piece ``start`` on, a pause after each, then the whole."""
        for index in range(start, len(state.pieces)):
            await self.piece(state, index, pause=True)
        await self.session._send(
            server_event(
                "response.function_call_arguments.done",
                **state.where,
                name=state.name,
                arguments=state.arguments,
            )
        )
        self.calling = None
        await self._done({**state.item, "status": "completed", "arguments": state.arguments})

    async def stop_call(self) -> None:
        """A call cut short (cancelled, failed): its item is done, incomplete, with what was
        streamed of its arguments."""
        if self.calling is not None:
            state, self.calling = self.calling, None
            streamed = "".join(state.pieces[: self.sent])
            await self._done({**state.item, "status": "incomplete", "arguments": streamed})


@dataclass
class _Call:
    """A function call being written: what its events repeat."""

    name: str
    arguments: str
    item: Event
    where: Event
    pieces: list[str]
    head: str  # ``where`` as JSON fields, then the delta's key: a delta's fixed part


async def _each(chunks: Iterator[str | ToolCall]) -> AsyncIterator[str | ToolCall]:
    """A plain iterator's chunks, for ``async for``."""
    for chunk in chunks:
        yield chunk


async def _after(
    first: str | ToolCall, rest: AsyncIterator[str | ToolCall]
) -> AsyncIterator[str | ToolCall]:
    """``first``, then the rest."""
    yield first
    async for chunk in rest:
        yield chunk


_silent_warned = False


def _voice(text: str) -> Speech:
    """``text`` spoken by the speech engine, or tones beside it where none is installed
    (said once in the log, with the fix)."""
    global _silent_warned
    try:
        return synthesize(text)
    except SpeechUnavailable as exc:
        if not _silent_warned:
            _silent_warned = True
            logger.warning("answers in audio are tones: %s", exc)
        return tones(text)


def _nothing() -> None:
    """No writer to flush: every send went out as it was made."""


def _pieces(arguments: str) -> list[str]:
    """The arguments as a model streams them: a JSON token or two at a time."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\s+|[^"\s]+', arguments)
    pieces = ["".join(tokens[i : i + 2]) for i in range(0, len(tokens), 2)]
    return pieces or [arguments]


def updated(session: Event, update: Event) -> Event:
    """``session`` with a checked ``update`` merged in, as a new object; raises
    :class:`RealtimeError` (and changes nothing) if the result is not a valid session."""
    result = copy.deepcopy(session)
    shapes.merge(result, update)
    _check_choice(result["tools"], result["tool_choice"], "session")
    return result


def _check_choice(tools: list[Event], choice: Any, where: str) -> None:
    """A forced function must be one of the tools."""
    if (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and not any(t.get("name") == choice["name"] for t in tools)
    ):
        raise RealtimeError(
            f"Invalid value for '{where}.tool_choice.name': no tool named "
            f"'{choice['name'][:64]}' is declared in {where}.tools.",
            code="invalid_value",
            param=f"{where}.tool_choice.name",
        )


def _check_base64(audio: str, param: str) -> None:
    try:
        base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise RealtimeError(
            f"{param} is not valid base64: encode the PCM bytes with base64.b64encode().",
            param=param,
        ) from None
