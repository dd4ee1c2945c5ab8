"""``NameBox``: notebook 00's box where a learner says what the room calls them.

from workshop_lib.notebook.namebox import NameBox
NameBox()      # a text box and Save; the name goes to workshop_lib.notebook.names
"""

from __future__ import annotations

import html
import os

import ipywidgets as widgets

from .names import NAME_VARIABLE, display_name, remember_name

__all__ = ["NameBox"]


class NameBox(widgets.VBox):
    """A text box with the current name and a Save button; saving keeps it for the session."""

    def __init__(self) -> None:
        self.text = widgets.Text(
            value=display_name("") or "", placeholder="your name", description="Your name:"
        )
        self.text.add_class("workshop-name-input")
        self.save_button = widgets.Button(description="Save", button_style="primary")
        self.save_button.add_class("workshop-name-save")
        self.save_button.on_click(lambda _button: self.save(self.text.value))
        self.status = widgets.HTML()
        self.status.add_class("workshop-name-status")
        super().__init__([widgets.HBox([self.text, self.save_button]), self.status])
        self._show()

    def save(self, name: str) -> str | None:
        """Keep ``name`` (what Save does); the name kept, or None if it was refused."""
        try:
            kept = remember_name(name)
        except ValueError as bad:
            self.status.value = f'<span style="color:#cf222e">{html.escape(str(bad))}</span>'
            return None
        self.text.value = kept
        self._show()
        return kept

    def _show(self) -> None:
        name = display_name()
        if os.environ.get(NAME_VARIABLE, "").strip():
            said = f"{NAME_VARIABLE} is set, so the room calls you <b>{html.escape(name or '')}</b>"
        elif name:
            said = f"In a workshop's room, your widgets join as <b>{html.escape(name)}</b>"
        else:
            said = "No name yet: in a workshop's room your widgets would join as <b>me</b>"
        self.status.value = said
