"""Declare a task from the console: a form per kind, generated from the
registry's declaration (each option's field, doc line, unit, bounds and
default), checked as ``config check`` checks a file, written into the
config file keeping everything else of it, and applied by a reload.

The form shows every problem the check finds (one line each) and writes
nothing until there is none.  Escape cancels.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from console.errors import UserError
from console.kinds.registry import get as get_kind
from console.kinds.registry import names as kind_names
from console.options import Option, options_of, parse_text


def form_options(kind: str) -> tuple[Option, ...]:
    """The options a ``[tasks.NAME]`` table of ``kind`` takes, required first."""
    opts = [o for o in options_of(get_kind(kind).options) if o.spec.config]
    return tuple(sorted(opts, key=lambda o: not o.required))


def hint(o: Option) -> str:
    parts = [o.spec.doc]
    if o.spec.unit:
        parts.append(f"[{o.spec.unit}]")
    if b := o.bounds_text():
        parts.append(f"({b})")
    if o.required:
        parts.append("required")
    elif o.default not in (None, "", ()):
        parts.append(f"default {o.default}")
    return " ".join(p for p in parts if p)


def values_of(kind: str, texts: dict[str, str], checks: dict[str, bool]) -> dict[str, Any]:
    """The typed option values the operator gave (empty fields and
    untouched check boxes: the declared default, so not written)."""
    out: dict[str, Any] = {}
    problems = []
    for o in form_options(kind):
        if o.type is bool:
            if o.name in checks and checks[o.name] != bool(o.default):
                out[o.name] = checks[o.name]
            continue
        text = texts.get(o.name, "").strip()
        if not text:
            continue
        try:
            v = parse_text(o, text)
        except UserError as e:
            problems.append(str(e))
            continue
        out[o.name] = list(v) if isinstance(v, tuple) else v
    if problems:
        raise DeclareProblems(problems)
    return out


class DeclareProblems(UserError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class DeclareTaskForm(ModalScreen[str]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, clusters: list[str], kind: str | None = None):
        super().__init__()
        self.clusters = clusters
        self.kind = kind or kind_names()[0]

    def compose(self) -> ComposeResult:
        with Vertical(id="declare-box"):
            yield Label("Declare a task (saved into the config file, applied at once)",
                        id="declare-title")
            with Horizontal(id="declare-head"):
                yield Input(placeholder="task name", id="declare-name")
                yield Select([(k, k) for k in kind_names()], value=self.kind, allow_blank=False,
                             id="declare-kind")
                yield Select([(c, c) for c in self.clusters], value=self.clusters[0],
                             allow_blank=False, id="declare-cluster")
                yield Checkbox("autostart", id="declare-autostart")
            yield VerticalScroll(id="declare-options")
            yield Static("", id="declare-problems")
            with Horizontal(id="declare-buttons"):
                yield Button("Save (Ctrl+S)", variant="primary", id="declare-save")
                yield Button("Cancel", id="declare-cancel")

    async def on_mount(self) -> None:
        await self._build_options()
        self.query_one("#declare-name", Input).focus()

    async def _build_options(self) -> None:
        box = self.query_one("#declare-options", VerticalScroll)
        await box.remove_children()
        rows = []
        for o in form_options(self.kind):
            if o.type is bool:
                rows.append(Checkbox(Text(f"{o.name}: {hint(o)}"), value=bool(o.default),
                                     id=f"opt-{o.name}", classes="declare-check"))
            else:
                rows.append(Label(Text.assemble((o.name, "bold"), "  ", (hint(o), "dim")),
                                  classes="declare-label"))
                rows.append(Input(placeholder="" if o.required or o.default in (None, "", ())
                                  else str(o.default), id=f"opt-{o.name}", classes="declare-input"))
        await box.mount_all(rows)

    @on(Select.Changed, "#declare-kind")
    async def _kind(self, event: Select.Changed) -> None:
        if event.value != self.kind:
            self.kind = str(event.value)
            await self._build_options()

    def _gather(self) -> tuple[str, str, str, bool, dict[str, Any]]:
        texts, checks = {}, {}
        for o in form_options(self.kind):
            w = self.query_one(f"#opt-{o.name}")
            if isinstance(w, Checkbox):
                checks[o.name] = w.value
            else:
                texts[o.name] = w.value
        name = self.query_one("#declare-name", Input).value.strip()
        if not name:
            raise DeclareProblems(["the task needs a name"])
        return (name, self.kind, str(self.query_one("#declare-cluster", Select).value),
                self.query_one("#declare-autostart", Checkbox).value,
                values_of(self.kind, texts, checks))

    @on(Button.Pressed, "#declare-save")
    def action_save(self) -> None:
        try:
            args = self._gather()
        except DeclareProblems as e:
            self._show(e.problems)
            return
        self._show([], "saving…")
        self._save(*args)

    @work(thread=True, exclusive=True, group="declare")
    def _save(self, name: str, kind: str, cluster: str, autostart: bool,
              options: dict[str, Any]) -> None:
        try:
            said = self.app.declare_task(name, kind, cluster, autostart, options)
        except UserError as e:
            problems = getattr(e, "problems", None) or getattr(e, "body", {}).get("problems") \
                or [str(e)]
            self.app.call_from_thread(self._show, problems)
            return
        self.app.call_from_thread(self.dismiss, said)

    def _show(self, problems: list[str], note: str = "") -> None:
        text = Text("\n").join(Text.assemble(("✖ ", "red"), p) for p in problems) if problems \
            else Text(note)
        self.query_one("#declare-problems", Static).update(text)

    @on(Button.Pressed, "#declare-cancel")
    def action_cancel(self) -> None:
        self.dismiss("")
