"""The instructor's announcement in the course's widgets, for as long as it stands.

A notebook joined to a room hears the instructor's announcements on its reporter's
connection (``reporter.py``), and the next ``check()`` prints the newest one once. The
widgets show it the whole time: the box widgets (``EchoPanel``, ``BallControls``,
``ChatWidget``, ``EventLog``) hold the kernel's one banner, an HTML widget drawn in each of
their views, and ``VoiceWidget`` carries it in an ``announcement`` trait its front end draws.
The reporter's thread sets both, as the chat's reader thread sets its view (ipywidgets
allows that from any thread). A notebook that reports to no room gets no banner at all.
"""

from __future__ import annotations

import html
import threading
import weakref
from collections.abc import Sequence

import ipywidgets as widgets

from . import reporter

__all__ = ["PREFIX", "banner", "follow", "with_banner"]

PREFIX = "From your instructor: "
_STYLE = (
    "margin:0 0 0.4em;padding:0.3em 0.6em;border-left:4px solid #bf8700;"
    "background:#fff8c5;color:#1f2328;font-weight:600;overflow-wrap:anywhere"
)

_lock = threading.Lock()
_banner: widgets.HTML | None = None
_followers: weakref.WeakSet[widgets.Widget] = weakref.WeakSet()
_listening = False


def _announcement() -> str | None:
    """The standing announcement ("" for none), or None when this notebook reports to no room."""
    try:
        current = reporter.current()
    except Exception:  # a widget is drawn whatever the room's state
        return None
    return None if current is None else current.announcement


def _listen() -> None:
    global _listening
    if not _listening:
        reporter.on_announcement(_show)
        _listening = True


def _draw(widget: widgets.HTML, text: str) -> None:
    # The text is the instructor's, shown as text: escaped, never markup.
    widget.value = (
        f'<div role="status" style="{_STYLE}">{PREFIX}{html.escape(text)}</div>' if text else ""
    )
    widget.layout.display = None if text else "none"


def _show(text: str) -> None:
    if _banner is not None:
        _draw(_banner, text)
    for widget in list(_followers):
        widget.announcement = text


def banner() -> widgets.HTML | None:
    """The kernel's announcement banner (hidden while there is none), or None when this
    notebook reports to no room."""
    global _banner
    text = _announcement()
    if text is None:
        return None
    with _lock:
        _listen()
        if _banner is None:
            _banner = widgets.HTML()
            _banner.add_class("workshop-announcement")
            _draw(_banner, text)
        return _banner


def with_banner(children: Sequence[widgets.Widget]) -> list[widgets.Widget]:
    """``children`` with the banner on top when the notebook reports to a room."""
    shown = banner()
    return [shown, *children] if shown is not None else list(children)


def follow(widget: widgets.Widget) -> None:
    """Keep ``widget.announcement`` (a synced text trait) on the standing announcement."""
    if _announcement() is None:
        return
    with _lock:
        _listen()
        _followers.add(widget)
    widget.announcement = _announcement() or ""  # read again: a change may have come meanwhile
