"""The server's log in a notebook: a live widget instead of prints in random cells.

    from workshop_lib.notebook.logview import LogView
    LogView()          # the recent lines, then every new one

Its logging subscription runs on the server's thread and only sets the widget's value,
which ipywidgets allows from any thread; it never prints into a cell.
"""

from __future__ import annotations

import html
import threading
from collections import deque

import ipywidgets as widgets

from ..server import logs

__all__ = ["LogView"]


class LogView(widgets.HTML):
    """The workshop server's recent log lines, updated live.

    Usage: ``LogView()`` in a cell; ``.close()`` detaches it. Logging is the server's only
    way to speak: it never prints, so nothing lands in whatever cell happens to be running.
    """

    def __init__(self, max_lines: int = 200) -> None:
        super().__init__()
        self.add_class("workshop-log-view")
        self.lines: deque[str] = deque(logs.recent_lines(), maxlen=max_lines)
        self._lock = threading.Lock()
        self._render()
        self._unsubscribe = logs.subscribe(self.add_line)

    def add_line(self, line: str) -> None:
        """Append a line (called from any thread, by the log's subscription)."""
        with self._lock:
            self.lines.append(line)
            self._render()

    def _render(self) -> None:
        text = html.escape("\n".join(self.lines)) or "(nothing logged yet)"
        self.value = (
            f'<pre style="max-height:14em;overflow:auto;font-size:12px;margin:0">{text}</pre>'
        )

    def close(self) -> None:
        """Stop showing the log and unsubscribe from it."""
        self._unsubscribe()
        super().close()
