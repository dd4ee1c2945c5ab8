"""The chat room in a notebook: messages, who is here, and a box to type in.

    from workshop_lib.chat import ChatWidget
    ChatWidget(server.links.ws("/chat"), "ada")

The widget is a :class:`~workshop_lib.chat.client.ChatClient` with a view. Its reader
thread only sets the view's value (ipywidgets allows that from any thread); everything a
user wrote is escaped: text is shown as text, never as markup.
"""

from __future__ import annotations

import html
import threading
from datetime import datetime

import ipywidgets as widgets

from ..clients.reading import Event
from ..progress.banner import with_banner
from .client import ChatClient

__all__ = ["ChatWidget"]


class ChatWidget(widgets.VBox):
    """A live chat window joined to the room as ``name``."""

    def __init__(self, url: str, name: str, shown: int = 100, *, token: str | None = None) -> None:
        self.shown = shown
        self.log_html = widgets.HTML()
        self.log_html.add_class("workshop-chat-log")
        self.users_html = widgets.HTML()
        self.users_html.add_class("workshop-chat-users")
        self.text = widgets.Text(placeholder="Say something", layout={"width": "60%"})
        self.text.add_class("workshop-chat-input")
        self.send_button = widgets.Button(description="Send", button_style="primary")
        self.send_button.add_class("workshop-chat-send")
        self.send_button.on_click(lambda _b: self.send(self.text.value))
        # Enter in the box sends, as on the browser page. The text box tells the kernel with
        # a "submit" message (what the deprecated Text.on_submit listens to as well).
        self.text.on_msg(self._on_text_message)
        # Renders run on the reader thread and on this one: each draws the client's state as
        # it is when it holds the lock, so the last one drawn is never older than the other.
        self._render_lock = threading.Lock()
        # Unstarted until on_event is set, so no event comes before the widget listens.
        self.client = ChatClient(url, name, token=token, reconnect=True, start=False)
        self.client.on_event = lambda _event: self._render()
        self.client.start()
        title = widgets.HTML(f"<b>Chat</b> as <code>{html.escape(self.client.you)}</code>")
        super().__init__(
            with_banner(
                [
                    title,
                    widgets.HBox([self.log_html, self.users_html]),
                    widgets.HBox([self.text, self.send_button]),
                ]
            )
        )
        self.add_class("workshop-chat")
        self._render()

    def send(self, text: str) -> None:
        """Post ``text`` (what the Send button and Enter do)."""
        if text.strip():
            self.client.send(text)
            self.text.value = ""

    def _on_text_message(self, _widget: object, content: dict, _buffers: object) -> None:
        if content.get("event") == "submit":
            self.send(self.text.value)

    def _render(self) -> None:
        with self._render_lock:
            # The client's one timeline: each message once (a rejoin's history is merged by
            # id), with the joined/left/error lines where they came.
            shown = self.client.timeline[-self.shown :]
            here = list(self.client.users)
            # Oldest at the top, newest at the bottom, as on the browser page. Each render
            # replaces the list, which would scroll it back to the top; a column-reverse box
            # starts at its end instead, so the rows go in newest first and the newest line
            # is in view. The spacer (at the bottom) keeps a short list at the top.
            body = "".join(_row(event) for event in reversed(shown))
            body = body or "<li><i>No messages yet.</i></li>"
            self.log_html.value = (
                '<ul style="list-style:none;padding:0;margin:0;width:32em;height:18em;'
                "overflow:auto;overflow-wrap:anywhere;display:flex;"
                'flex-direction:column-reverse"><li aria-hidden="true" style="flex:1 0 0">'
                f"</li>{body}</ul>"
            )
            users = "".join(f"<li>{html.escape(u)}</li>" for u in here)
            self.users_html.value = (
                f'<div style="margin-left:1em"><b>Here ({len(here)})</b>'
                f'<ul style="padding-left:1.2em;margin:0">{users}</ul></div>'
            )

    def close(self) -> None:
        """Leave the room and close the widgets."""
        self.client.close()
        super().close()


def _time(ts: float) -> str:
    """HH:MM with the full date and time on hover, as the browser page shows it."""
    at = datetime.fromtimestamp(ts)
    return (
        f'<time title="{at.strftime("%Y-%m-%d %H:%M:%S")}" '
        f'style="color:#6e7781;font-size:0.85em">{at.strftime("%H:%M")}</time>'
    )


def _row(event: Event) -> str:
    kind = event.get("type")
    if kind == "chat.message":
        return (
            f'<li data-kind="message">{_time(event["ts"])} '
            f"<b>{html.escape(event['from'])}</b>: {html.escape(event['text'])}</li>"
        )
    at = _time(event["at"]) + " " if "at" in event else ""
    if kind in ("chat.joined", "chat.left"):
        verb = "joined" if kind == "chat.joined" else "left"
        return f'<li data-kind="{verb}">{at}<i>{html.escape(event["name"])} {verb}</i></li>'
    if kind == "error":
        return (
            f'<li data-kind="error" style="color:#cf222e">{at}{html.escape(event["message"])}</li>'
        )
    if kind == "notice":
        return f'<li data-kind="notice">{at}<i>{html.escape(event["message"])}</i></li>'
    return ""
