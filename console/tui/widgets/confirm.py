"""A reusable confirmation dialog for dangerous actions.

The operator must type the target's name (a cluster, a table, a task) exactly;
until then the confirm button stays disabled.  Escape cancels.  The dialog
dismisses with ``True`` only on a typed, matching confirmation.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.tui.widgets.dialog import HELP


class ConfirmDialog(ModalScreen[bool]):
    HELP_TITLE = "Confirmation"
    HELP_NOTES = "Type the name shown, exactly, then Enter (or the red button); anything else changes nothing."
    BINDINGS = [Binding("escape", "cancel", "Cancel"), HELP]

    def __init__(self, title: str, message: str, target: str, *, action_label: str = "Confirm"):
        super().__init__()
        self.title_text, self.message, self.target, self.action_label = title, message, target, action_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(self.title_text, id="confirm-title")
            yield Static(self.message, id="confirm-message")
            yield Label(f"Type [b]{self.target}[/b] to confirm:", id="confirm-prompt")
            yield Input(placeholder=self.target, id="confirm-input")
            with Horizontal(id="confirm-buttons"):
                yield Button(self.action_label, variant="error", id="confirm-ok", disabled=True)
                yield Button("Cancel", id="confirm-cancel")

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.cursor_blink = False  # a steady cursor: always visible, and the same in every picture
        self.query_one("#confirm-input", Input).focus()

    @on(Input.Changed, "#confirm-input")
    def _changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm-ok", Button).disabled = event.value != self.target

    @on(Input.Submitted, "#confirm-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value == self.target:
            self.dismiss(True)
        else:
            self.query_one("#confirm-prompt", Label).update(
                f"[red]That is not {self.target!r}.[/red] Type [b]{self.target}[/b] to confirm:")

    @on(Button.Pressed, "#confirm-ok")
    def _ok(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-cancel")
    def _cancel_button(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
