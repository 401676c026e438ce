"""What every console screen has: `?` first in the footer (help generated
from the bindings), breadcrumbs in the header (cluster > task > panel: the
panel is the titled container holding the focus), and `/` to filter on
screens that list things (``FILTERABLE``)."""

from __future__ import annotations

from textual import on
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input

SEP = " › "


class FilterInput(Input):
    """The `/` filter line: typing filters at once, Enter keeps the filter
    and returns to the list, Esc clears it."""

    BINDINGS = [Binding("escape", "clear", "Clear filter")]

    def action_clear(self) -> None:
        self.value = ""
        self.screen.close_filter()


class ConsoleScreen(Screen):
    BINDINGS = [Binding("question_mark,f1", "app.help", "Help", key_display="?")]
    HELP_NOTES = ""
    FILTERABLE = False  # True: `/` opens the filter line (subclasses bind it)
    FOOTER_KEEP: tuple[str, ...] = ()  # actions a narrow footer keeps first (widgets/footer.py)

    filter_text = ""

    def crumbs(self) -> list[str]:
        """The path to this screen (cluster, task); the focused panel is added."""
        return []

    def panel_name(self) -> str:
        node = self.focused
        while node is not None and node is not self:
            title = getattr(node, "border_title", None)
            if title:
                return str(title)
            node = node.parent
        return ""

    def update_crumbs(self) -> None:
        parts = [p for p in (*self.crumbs(), self.panel_name()) if p]
        self.sub_title = SEP.join(parts)

    def on_descendant_focus(self) -> None:
        self.update_crumbs()

    def on_screen_resume(self) -> None:
        self.update_crumbs()
        self.call_after_refresh(self.update_crumbs)  # once the focus has settled

    # ---- `/` filter ------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query(FilterInput)
        if box:
            box.first().display = True
            box.first().focus()
            return
        self._filter_return = self.focused
        line = FilterInput(placeholder="filter: type to narrow the lists, Enter keeps it, Esc clears",
                           id="filter")
        line.cursor_blink = False  # steady: always visible
        self.mount(line, before=self.query_one("Footer"))
        line.focus()

    def close_filter(self) -> None:
        for box in self.query(FilterInput):
            box.display = bool(box.value)
        back = getattr(self, "_filter_return", None)
        if back is not None and back.is_attached:
            back.focus()
        else:
            self.focus_next()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip().lower()
        self.apply_filter()

    @on(Input.Submitted, "#filter")
    def _filter_kept(self) -> None:
        self.close_filter()

    def apply_filter(self) -> None:
        """Show only what matches ``filter_text`` (subclasses)."""

    def matches(self, *texts: object) -> bool:
        if not self.filter_text:
            return True
        return any(self.filter_text in str(t).lower() for t in texts)
