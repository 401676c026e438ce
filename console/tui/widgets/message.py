"""A result that must stay on screen until read (a restore's: how to reach
the restored server).  Enter or Esc closes it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from console.tui.widgets.dialog import HELP


class MessageDialog(ModalScreen[None]):
    HELP_TITLE = "Result"
    BINDINGS = [Binding("escape,enter", "close", "Close"), HELP]

    def __init__(self, title: str, message: str):
        super().__init__()
        self.title_text, self.message = title, message

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="ask"):
            yield Label(self.title_text, id="confirm-title")
            yield Static(self.message, id="confirm-message", markup=False)
            yield Button("OK", id="message-ok")

    def on_button_pressed(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
