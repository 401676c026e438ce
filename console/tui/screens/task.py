"""Generic task screen: the status snapshot and the common commands, for
kinds that have no screen of their own."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from console.tui.widgets.actions import TaskActions


class TaskScreen(TaskActions, Screen):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("p", "pause", "Pause"),
        Binding("u", "resume", "Resume"),
        Binding("x", "stop", "Stop"),
    ]

    def __init__(self, engine, task_id: str):
        super().__init__()
        self.engine, self.task_id = engine, task_id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="task-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.task_id
        self.set_interval(self.app.refresh_interval, self.refresh_view)
        self.refresh_view()

    def refresh_view(self) -> None:
        st = self.engine.task(self.task_id).status()
        self.query_one("#task-status", Static).update(
            json.dumps(st.to_dict(), indent=2, sort_keys=True, default=str))

    def action_pause(self) -> None:
        self._cmd("pause")

    def action_resume(self) -> None:
        self._cmd("resume")

    def action_stop(self) -> None:
        self._cmd("stop")
