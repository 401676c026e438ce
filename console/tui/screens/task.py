"""Generic task screen: the status snapshot and the common commands, for
kinds that have no screen of their own."""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Header, Static

from console.tui.screens.taskbase import TaskScreenBase, state_line
from console.tui.widgets.footer import ConsoleFooter


class TaskScreen(TaskScreenBase):
    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("u", "resume", "Resume"),
        Binding("x", "stop", "Stop"),
    ]
    HELP_TITLE = "Task"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="task-state", classes="state-line")
        with VerticalScroll():
            with Vertical(classes="panel") as p:
                p.border_title = "Status"
                yield Static(id="task-status", markup=False)
        yield ConsoleFooter()

    def render_status(self, st) -> None:
        self.query_one("#task-state", Static).update(state_line(st, Text(st.summary)))
        self.query_one("#task-status", Static).update(
            json.dumps(st.to_dict(), indent=2, sort_keys=True, default=str))

    def action_pause(self) -> None:
        self._cmd("pause")

    def action_resume(self) -> None:
        self._cmd("resume")

    def action_stop(self) -> None:
        self._cmd("stop")
