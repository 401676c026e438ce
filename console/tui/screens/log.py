"""The audit log: every operator action and state change, newest last."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog

OUTCOME_STYLE = {"refused": "red", "failed": "bold red", "ok": "", "started": "cyan"}


class LogScreen(Screen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("r", "reload", "Reload")]

    def __init__(self, engine):
        super().__init__()
        self.engine = engine

    def compose(self) -> ComposeResult:
        yield Header()
        yield RichLog(id="audit", wrap=True, max_lines=5000)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"audit log: {self.engine.state.audit_path}"
        self.action_reload()

    def action_reload(self) -> None:
        log = self.query_one("#audit", RichLog)
        log.clear()
        for e in self.engine.state.read_audit(limit=2000):
            log.write(Text(e.line(), style=OUTCOME_STYLE.get(e.outcome, "")))
