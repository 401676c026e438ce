"""What every task screen shares: the task it shows, the breadcrumbs
(cluster > task > panel), one status snapshot per refresh, the state line
on top in the state's colour, and its commands sent off the UI thread."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from console.errors import UserError
from console.tui.format import state_text
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.actions import TaskActions


class TaskScreenBase(TaskActions, ConsoleScreen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", key_display="Esc")]

    def __init__(self, engine, task_id: str):
        super().__init__()
        self.engine, self.task_id = engine, task_id

    def crumbs(self) -> list[str]:
        tc = self.engine.config.tasks.get(self.task_id)
        cluster = getattr(tc, "cluster", "") if tc else ""
        if not cluster:
            try:
                cluster = getattr(self.engine.task(self.task_id).status().detail, "cluster", "")
            except UserError:
                cluster = ""
        return [c for c in (cluster, self.task_id) if c]

    def on_mount(self) -> None:
        self.set_interval(getattr(self.app, "refresh_interval", 1.0), self.refresh_view)
        self.refresh_view()
        self.update_crumbs()

    def snapshot(self):
        """This refresh's one status snapshot (None when the task is gone)."""
        try:
            return self.engine.task(self.task_id).status()
        except UserError:
            return None

    def refresh_view(self) -> None:
        st = self.snapshot()
        if st is not None:
            self.render_status(st)

    def render_status(self, st) -> None:
        """Fill the screen from one snapshot (subclasses)."""


def state_line(st, *parts: str | Text) -> Text:
    """``● RUNNING streaming  part  part`` with the last error, if any, in red."""
    t = state_text(st.state, st.phase)
    for p in parts:
        if p:
            t.append("   ")
            t.append(Text.from_markup(p) if isinstance(p, str) else p)
    if st.last_error:
        t.append(f"   last error: {st.last_error}", style="red")
    return t
