"""The echo lesson's live display: type a message, see it come back with its round trip.

    from workshop_lib.echo import EchoPanel
    EchoPanel(server.links.ws("/echo"))    # text box, Send, log with round-trip times

Widgets are created and displayed in the kernel's main thread, and read what clients
receive: the lesson's server never imports this module.
"""

from __future__ import annotations

import html
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime

import ipywidgets as widgets
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ..clients.proxies import proxy_for
from ..progress.banner import with_banner

__all__ = ["EchoPanel", "LogEntry"]


@dataclass(frozen=True)
class LogEntry:
    """One line of the echo log: what went which way, when, and the round trip if known."""

    time: datetime
    direction: str  # "sent", "received" or "error"
    text: str
    ms: float | None = None

    def __str__(self) -> str:
        """The line as a cell prints it: the echo and its round trip, or what went wrong."""
        if self.direction == "error":
            return f"error: {self.text}"
        if self.ms is None:
            return f"{self.direction}: {self.text!r}"
        return f"{self.text!r} came back in {self.ms:.2f} ms"


class EchoPanel(widgets.VBox):
    """Type a message, press Send, see it come back with its round-trip time.

    Usage: ``EchoPanel(server.links.ws("/echo"))``. It holds one synchronous client
    connection (the server runs on its own thread, so a blocking client cannot deadlock
    it), opened on the first send and reopened if the server restarted.
    """

    def __init__(self, url: str, *, max_entries: int = 50, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self.entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._websocket: ClientConnection | None = None
        self._exit_stack = ExitStack()  # holds the open connection's `with` across clicks

        self.text = widgets.Text(placeholder="Type a message", description="Message:")
        self.text.add_class("workshop-echo-input")
        self.send_button = widgets.Button(
            description="Send", button_style="primary", icon="paper-plane"
        )
        self.send_button.add_class("workshop-echo-send")
        self.send_button.on_click(lambda _button: self.send(self.text.value))
        # Enter in the box sends, as on the browser page. The text box tells the kernel with
        # a "submit" message (what the deprecated Text.on_submit listens to as well).
        self.text.on_msg(self._on_text_message)
        self.log_html = widgets.HTML()
        self.log_html.add_class("workshop-echo-log")
        title = widgets.HTML(f"<b>Echo</b> <code>{html.escape(url)}</code>")
        super().__init__(
            with_banner([title, widgets.HBox([self.text, self.send_button]), self.log_html])
        )
        self.add_class("workshop-echo-panel")
        self._render()

    def send(self, text: str) -> LogEntry:
        """Send ``text``, wait for the echo, log both; returns the received (or error) entry."""
        if not text:
            return self._add(LogEntry(datetime.now(), "error", "type a message first"))
        try:
            websocket = self._connection()
            started = time.perf_counter()
            websocket.send(text)
            self._add(LogEntry(datetime.now(), "sent", text))
            reply = websocket.recv(timeout=self.timeout)
            ms = (time.perf_counter() - started) * 1e3
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            self._drop_connection()
            return self._add(LogEntry(datetime.now(), "error", _explain(exc, self.url)))
        received = reply if isinstance(reply, str) else f"<{len(reply)} bytes>"
        self.text.value = ""
        return self._add(LogEntry(datetime.now(), "received", received, ms))

    def _on_text_message(self, _widget: object, content: dict, _buffers: object) -> None:
        if content.get("event") == "submit":
            self.send(self.text.value)

    def close(self) -> None:
        """Close the connection and the widgets."""
        self._drop_connection()
        super().close()

    def _connection(self) -> ClientConnection:
        if self._websocket is None:
            self._websocket = self._exit_stack.enter_context(
                connect(self.url, open_timeout=self.timeout, proxy=proxy_for(self.url))
            )
        return self._websocket

    def _drop_connection(self) -> None:
        self._websocket = None
        self._exit_stack.close()

    def _add(self, entry: LogEntry) -> LogEntry:
        self.entries.append(entry)
        self._render()
        return entry

    def _render(self) -> None:
        if not self.entries:
            self.log_html.value = "<i>Nothing sent yet.</i>"
            return
        arrows = {"sent": "&rarr; sent", "received": "&larr; received", "error": "&#9888; error"}
        # Cells padded apart (a bare table runs its columns together); times right-aligned
        # in tabular digits so they line up.
        cell = 'style="padding:0.15em 0.9em 0.15em 0;text-align:left;vertical-align:top"'
        number = 'style="padding:0.15em 0;text-align:right;font-variant-numeric:tabular-nums"'
        rows = "".join(
            f'<tr data-direction="{e.direction}">'
            f"<td {cell}><code>{e.time.strftime('%H:%M:%S.%f')[:-3]}</code></td>"
            f"<td {cell}>{arrows[e.direction]}</td>"
            f"<td {cell}>{html.escape(e.text)}</td>"  # learner text is text, never markup
            f"<td {number}>{'' if e.ms is None else f'{e.ms:.2f} ms'}</td></tr>"
            for e in self.entries
        )
        self.log_html.value = (
            f'<table style="border-collapse:collapse"><tr><th {cell}>time</th><th {cell}></th>'
            f"<th {cell}>message</th><th {number}>round trip</th></tr>{rows}</table>"
        )


def _explain(exc: BaseException, url: str) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"no server at {url}: run the cell that starts it (the one with start_server)"
    if isinstance(exc, TimeoutError):
        return "no reply in time: is the server running, and is this its echo path?"
    if isinstance(exc, ConnectionClosed):
        return f"connection closed ({exc}); press Send again to reconnect"
    return f"{type(exc).__name__}: {exc}"
