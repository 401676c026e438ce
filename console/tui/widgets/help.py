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
    """(key, description) for the bindings active on a screen and the app."""
    out, seen = [], set()
    for _, binding, enabled, _tooltip in screen.active_bindings.values():
        if not binding.description or binding.key in seen:
            continue
        seen.add(binding.key)
        key = binding.key_display or screen.app.get_key_display(binding)
        out.append((key, binding.description + ("" if enabled else " (n/a here)")))
    return out
