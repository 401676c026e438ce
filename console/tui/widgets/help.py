"""The `?` help screen: the keys of the screen (or dialog) it was opened
from, generated from its bindings, then the keys that work everywhere."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {"question_mark": "?", "escape": "Esc", "enter": "Enter", "plus": "+", "minus": "-",
             "equals_sign": "=", "slash": "/", "tab": "Tab", "ctrl+p": "Ctrl+P", "f1": "F1",
             "space": "Space"}
# Textual's own bindings the operator needs no help for (focus moves are in the notes)
SKIP_ACTIONS = {"app.focus_next", "app.focus_previous", "screen.copy_text", "help_quit",
                "quit", "app.help", "help"}


def key_name(key: str) -> str:
    return KEY_NAMES.get(key, key if len(key) == 1 else key.capitalize())


def bindings_of(node) -> list[tuple[str, str]]:
    """(keys, description) of a screen's (or dialog's) bindings with a
    description, one row per action in declaration order: ``escape,q`` shows
    as ``Esc, q``; a ``key_display`` names the first key (``+``, and ``=``,
    the unshifted ``+``, is not listed)."""
    rows: dict[str, tuple[list[str], str]] = {}
    cls = node if isinstance(node, type) else type(node)
    for key, b in cls._merged_bindings:
        if not b.description or b.action in SKIP_ACTIONS or key == "equals_sign":
            continue
        keys, _ = rows.setdefault(b.action, ([], b.description))
        name = b.key_display if b.key_display and not keys else key_name(key)
        if name not in keys:
            keys.append(name)
    return [(", ".join(keys), desc) for keys, desc in rows.values()]


GLOBAL_KEYS = [("?, F1", "this help (on every screen and dialog)"),
               ("Ctrl+P", "command palette: every action here, go to a cluster, host or task, "
                          "start a task, switchover, failover, recovery history, snapshot, restore, theme, "
                          "screenshot"),
               ("Tab", "next panel (the header shows where the focus is)"), ("Ctrl+Q", "quit at once")]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, title: str, bindings: list[tuple[str, str]], notes: str = ""):
        super().__init__()
        self.title_text, self.bindings, self.notes = title, bindings, notes

    def compose(self) -> ComposeResult:
        lines = [f"[b]{self.title_text}[/b]", ""]
        lines += [f"  [b]{k:<10}[/b] {d}" for k, d in self.bindings]
        lines += ["", "[b]Everywhere[/b]"] + [f"  [b]{k:<10}[/b] {d}" for k, d in GLOBAL_KEYS]
        if self.notes:
            lines += ["", self.notes]
        lines += ["", "[dim]Esc closes this help.[/dim]"]
        with VerticalScroll(id="help-box"):
            yield Static("\n".join(lines), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
