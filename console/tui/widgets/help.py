"""The `?` help screen: the keys of the screen it was opened from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, title: str, bindings: list[tuple[str, str]], notes: str = ""):
        super().__init__()
        self.title_text, self.bindings, self.notes = title, bindings, notes

    def compose(self) -> ComposeResult:
        lines = [f"[b]{self.title_text}[/b]", ""]
        lines += [f"  [b]{k:<12}[/b] {d}" for k, d in self.bindings]
        if self.notes:
            lines += ["", self.notes]
        lines += ["", "[dim]Esc closes this help.[/dim]"]
        with VerticalScroll(id="help-box"):
            yield Static("\n".join(lines), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)


def bindings_of(screen) -> list[tuple[str, str]]:
    """(key, description) for the screen's own keys, then the app's, one row
    per action (``plus,equals_sign`` shows once)."""
    out, seen = [], set()
    for source in (screen, screen.app):
        for b in getattr(type(source), "BINDINGS", []):
            if isinstance(b, tuple):
                key, action, desc = (list(b) + [""])[:3]
                display = key.split(",")[0]
            else:
                key, action, desc = b.key, b.action, b.description
                display = b.key_display or key.split(",")[0]
            if not desc or action in seen:
                continue
            seen.add(action)
            display = {"question_mark": "?", "escape": "Esc", "enter": "Enter"}.get(display, display)
            out.append((display, desc))
    return out
