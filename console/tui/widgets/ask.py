"""A yes/no question before an action that is not destructive but should not
happen by a stray key (re-running a finished task).  ``y`` or the button
answers yes; ``n``, Esc or the other button no."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from console.tui.widgets.dialog import HELP


class AskDialog(ModalScreen[bool]):
    HELP_TITLE = "Question"
    BINDINGS = [Binding("y", "yes", "Yes"), Binding("n,escape", "no", "No"), HELP]

    def __init__(self, title: str, message: str, yes_label: str = "Yes"):
        super().__init__()
        self.title_text, self.message, self.yes_label = title, message, yes_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="ask"):
            yield Label(self.title_text, id="confirm-title")
            yield Static(self.message, id="confirm-message")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes_label} (y)", variant="warning", id="ask-yes")
                yield Button("No (n)", id="ask-no")

    def on_mount(self) -> None:
        self.query_one("#ask-no", Button).focus()

    @on(Button.Pressed, "#ask-yes")
    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#ask-no")
    def action_no(self) -> None:
        self.dismiss(False)
