"""The audit log: every operator action and state change, newest last;
`/` filters it."""

from __future__ import annotations

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Header, RichLog

from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.footer import ConsoleFooter

OUTCOME_STYLE = {"refused": "red", "failed": "bold red", "ok": "", "started": "cyan"}


class LogScreen(ConsoleScreen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", key_display="Esc"),
                Binding("slash", "filter", "Filter", key_display="/"),
                Binding("r", "reload", "Reload")]
    HELP_TITLE = "Audit log"
    FILTERABLE = True

    def __init__(self, engine):
        super().__init__()
        self.engine = engine
        self._lines: list[Text] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(classes="panel", id="audit-pane") as p:
            p.border_title = "Audit log"
            p.border_subtitle = str(self.engine.state.audit_path)
            yield RichLog(id="audit", wrap=True, max_lines=5000, min_width=20)
        yield ConsoleFooter()

    def crumbs(self) -> list[str]:
        return ["audit log"]

    def on_mount(self) -> None:
        self.action_reload()
        self.query_one("#audit", RichLog).focus()

    @work(thread=True, exclusive=True, group="audit")
    def action_reload(self) -> None:
        """Read the audit log off the UI thread (a client asks the engine for it)."""
        lines = [Text(e.line(), style=OUTCOME_STYLE.get(e.outcome, ""))
                 for e in self.engine.state.read_audit(limit=2000)]
        self.app.call_from_thread(self._show, lines)

    def _show(self, lines: list[Text]) -> None:
        self._lines = lines
        self.apply_filter()

    def on_resize(self, event: events.Resize) -> None:
        self.apply_filter()  # the lines wrap again at the new width

    def apply_filter(self) -> None:
        log = self.query_one("#audit", RichLog)
        log.clear()
        for line in self._lines:
            if self.matches(line.plain):
                log.write(line)
