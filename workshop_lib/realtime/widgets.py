"""The event log: a Realtime conversation's events, live, grouped by response and item.

    log = EventLog()
    display(log)
    log.sent(event)        # what the notebook sent (↑)
    log.add(event)         # what the server sent (↓): the SDK's models or plain dicts

Each response gets a row whose text grows as its ``response.output_text.delta`` events
arrive; below, every event in order, indented under the response or item it belongs to.
The widget is updated by the notebook's own code (the kernel side), never from the
server's thread.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from ..progress.banner import with_banner

__all__ = ["EventLog"]


# The deltas of an answer's words: its text, or the transcript of its audio.
_TEXT_DELTAS = ("response.output_text.delta", "response.output_audio_transcript.delta")


def _as_dict(event: Any) -> dict[str, Any]:
    """A plain dict of a server or client event, whether the SDK's model or JSON's dict."""
    if isinstance(event, Mapping):
        return dict(event)
    dump = getattr(event, "model_dump", None)
    if dump is None:
        raise TypeError(f"an event is a dict or an SDK event, not {type(event).__name__}")
    return dump(exclude_none=True)


class EventLog(widgets.VBox):
    """Shows events as they come; ``limit`` events are kept (older ones are dropped)."""

    def __init__(self, limit: int = 300, **kwargs: Any) -> None:
        self.limit = limit
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.texts: dict[str, str] = {}  # response id -> text so far
        self.statuses: dict[str, str] = {}  # response id -> status
        self._start = time.monotonic()
        self._answers = widgets.HTML()
        self._log = widgets.HTML()
        self._answers.add_class("realtime-answers")
        self._log.add_class("realtime-event-log")
        super().__init__(with_banner([self._answers, self._log]), **kwargs)
        self.add_class("realtime-events")
        self._draw()

    # -- feeding it ------------------------------------------------------------------------

    def add(self, event: Any) -> dict[str, Any]:
        """Log an event the server sent; returns it as a dict."""
        return self._record("↓", _as_dict(event))

    def sent(self, event: Any) -> dict[str, Any]:
        """Log an event the notebook sent."""
        return self._record("↑", _as_dict(event))

    def text(self, response_id: str | None = None) -> str:
        """The text of a response so far (the latest one by default)."""
        if response_id is None:
            response_id = next(reversed(self.texts), None)
        return self.texts.get(response_id, "") if response_id else ""

    def clear(self) -> None:
        """Forget every event."""
        self.events.clear()
        self.texts.clear()
        self.statuses.clear()
        self._draw()

    def _record(self, direction: str, event: dict[str, Any]) -> dict[str, Any]:
        kind = str(event.get("type", "?"))
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        if kind == "response.created" and response.get("id"):
            self.texts[response["id"]] = ""
            self.statuses[response["id"]] = "in_progress"
        elif kind in _TEXT_DELTAS and event.get("response_id"):
            rid = event["response_id"]
            self.texts[rid] = self.texts.get(rid, "") + str(event.get("delta", ""))
        elif kind == "response.done" and response.get("id"):
            self.statuses[response["id"]] = str(response.get("status"))
            calls = [
                f"{i.get('name')}({i.get('arguments')})"
                for i in response.get("output") or []
                if isinstance(i, dict) and i.get("type") == "function_call"
            ]
            if calls:  # a response that asks for tools says so where its text would be
                text = self.texts.get(response["id"], "")
                self.texts[response["id"]] = (
                    (text + " " if text else "") + "calls " + ", ".join(calls)
                )
        self.events.append((time.monotonic() - self._start, direction, event))
        del self.events[: -self.limit]
        self._draw()
        return event

    # -- drawing ---------------------------------------------------------------------------

    def _draw(self) -> None:
        rows = [
            f"<tr><td><code>{html.escape(rid)}</code></td>"
            f"<td>{html.escape(self.statuses.get(rid, ''))}</td>"
            f"<td class='realtime-text'>{html.escape(text)}</td></tr>"
            for rid, text in self.texts.items()
        ]
        self._answers.value = (
            "<table style='border-collapse:collapse'><tr><th align=left>response</th>"
            "<th align=left>status</th><th align=left>text, as the deltas arrive</th></tr>"
            + "".join(rows)
            + "</table>"
            if rows
            else "<i>no response yet</i>"
        )
        lines = [self._line(*entry) for entry in self.events]
        self._log.value = (
            "<div style='font-family:monospace;font-size:12px;max-height:22em;overflow:auto'>"
            + ("".join(lines) or "<i>no events yet</i>")
            + "</div>"
        )

    @staticmethod
    def _line(at: float, direction: str, event: dict[str, Any]) -> str:
        kind = str(event.get("type", "?"))
        group = event.get("response_id") or (event.get("response") or {}).get("id")
        item = event.get("item_id") or (event.get("item") or {}).get("id")
        ids = " ".join(
            f"{name}={value}" for name, value in (("response", group), ("item", item)) if value
        )
        detail = ""
        if kind == "response.output_audio.delta":  # base64 audio: its size, not its text
            detail = f"<{len(str(event.get('delta', ''))) * 3 // 4} bytes of audio>"
        elif "delta" in event:
            detail = repr(event["delta"])
        elif kind == "error":
            error = event.get("error") or {}
            detail = (
                f"{error.get('code')}: {error.get('message')} (event_id={error.get('event_id')})"
            )
        elif kind == "response.done":
            detail = str((event.get("response") or {}).get("status"))
        elif kind == "response.function_call_arguments.done":
            detail = f"{event.get('name')}({event.get('arguments')}) call_id={event.get('call_id')}"
        elif (event.get("item") or {}).get("type") in ("function_call", "function_call_output"):
            call = event["item"]
            detail = f"{call['type']} {call.get('name', '')} call_id={call.get('call_id')}"
        indent = 2 if group else 1 if item else 0
        colour = "#0550ae" if direction == "↑" else "#24292f"
        return (
            f"<div style='color:{colour};padding-left:{indent * 1.5}em' "
            f"data-type='{html.escape(kind)}'>{at:6.3f} {direction} <b>{html.escape(kind)}</b> "
            f"<span style='color:#6e7781'>{html.escape(ids)}</span> {html.escape(detail)}</div>"
        )
