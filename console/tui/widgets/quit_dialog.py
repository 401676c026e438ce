"""Leaving a console that started the engine while its tasks run: keep
them running (the engine goes on in the background) or stop them all (the
engine checkpoints every task and exits).  Escape stays in the console."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from console.tui.widgets.dialog import HELP

KEEP, STOP, STAY = "keep", "stop", "stay"


class QuitDialog(ModalScreen[str]):
    HELP_TITLE = "Quit"
    BINDINGS = [Binding("escape", "stay", "Stay"), Binding("k", "keep", "Keep running"),
                Binding("s", "stop", "Stop all"), HELP]

    def __init__(self, pid: int, running: list[str]):
        super().__init__()
        self.pid, self.running = pid, running

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label("Quit: tasks are running", id="confirm-title")
            yield Static(f"This console started the engine (pid {self.pid}); it runs "
                         f"{', '.join(self.running)}.\n"
                         f"[b]k[/b] keep them running in the background (open the console again "
                         f"to see them), [b]s[/b] stop them all (each checkpoints first), "
                         f"[b]Esc[/b] stay.", id="confirm-message")
            with Horizontal(id="confirm-buttons"):
                yield Button("Keep running", variant="primary", id="quit-keep")
                yield Button("Stop all", variant="error", id="quit-stop")
                yield Button("Stay", id="quit-stay")

    def on_mount(self) -> None:
        self.query_one("#quit-keep", Button).focus()

    @on(Button.Pressed, "#quit-keep")
    def action_keep(self) -> None:
        self.dismiss(KEEP)

    @on(Button.Pressed, "#quit-stop")
    def action_stop(self) -> None:
        self.dismiss(STOP)

    @on(Button.Pressed, "#quit-stay")
    def action_stay(self) -> None:
        self.dismiss(STAY)
