"""Recovery history: every past recovery (switchover, failover, reattach)
of one cluster or of all, with who acknowledged it, and the selected one's
step journal; a running recovery's steps appear as its journal is written
(after every step).  `a` acknowledges the selected recovery's cluster (the
cluster's name typed), `/` filters, `r` reads again.

The records come from the engine (``engine.recoveries``: the state
directory in this process, or ``GET .../recoveries`` through the API),
read in a worker thread on a timer; the screen renders the last answer.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Header, Static

from console.errors import UserError
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.steps import StepTable, outcome_text, step_rows
from console.tui.widgets.tables import ResponsiveTable

REC_COLS3 = (("id", "id", 24), ("cluster", "cluster", 8), ("kind", "kind", 10),
             ("started", "started", 19), ("duration", "duration", 8), ("result", "result", 11),
             ("ack", "acknowledged by", 16))
POLL = 1.0  # seconds between reads: a running recovery's steps show within a second


def duration_text(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    return f"{s:.1f} s" if s < 60 else f"{int(s) // 60}m{int(s) % 60:02d}s"


def ack_text(r) -> Text:
    if r.acknowledged is None:
        return Text("-", style="dim")  # not an anti-flapping record (a reattach)
    if not r.acknowledged:
        return Text("NOT acknowledged", style="bold yellow")
    return Text(r.acknowledged_by or "?")


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def key_of(r) -> str:
    return f"{r.cluster}/{r.id}"


class RecoveryTable(ResponsiveTable):
    COLUMNS = REC_COLS3
    PRIORITY = ("kind", "result", "started", "ack", "duration", "cluster", "id")

    def show(self, rows: list[tuple[str, dict[str, object]]]) -> None:
        """Rows in this order (newest first); the cursor stays on its
        recovery when rows come or go."""
        keys = [k for k, _ in rows]
        have = [k.value for k in self.rows]
        if keys == have or not have:  # the same rows, or the first ones: in place
            self.sync(rows)
        else:
            selected = self.selected()
            self._rows = list(rows)
            self.clear()
            self.sync(rows)
            if selected in keys:
                self.move_cursor(row=keys.index(selected))


    def selected(self) -> str | None:
        if not self.row_count:
            return None
        key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return key.value


class RecoveriesScreen(ConsoleScreen):
    DEFAULT_CSS = """
    RecoveriesScreen #rh-list-pane { height: auto; max-height: 50%; }
    RecoveriesScreen #rh-list { height: auto; max-height: 20; }
    RecoveriesScreen #rh-steps { height: auto; }
    RecoveriesScreen #rh-summary { padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", key_display="Esc"),
        Binding("a", "acknowledge", "Acknowledge"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("r", "refresh_now", "Refresh"),
    ]
    HELP_TITLE = "Recovery history"
    HELP_NOTES = ("Arrows choose a recovery; its steps show below (a running one's as they happen).\n"
                  "a acknowledges the selected recovery's cluster: it asks for the cluster name typed.")
    FILTERABLE = True

    def __init__(self, engine, cluster: str | None = None):
        super().__init__()
        self.engine, self.cluster = engine, cluster
        self.records: list = []  # the last answer, every cluster shown, oldest first
        self.errors: dict[str, str] = {}
        self.loaded = False

    def clusters(self) -> list[str]:
        return [self.cluster] if self.cluster else list(self.engine.config.clusters)

    def crumbs(self) -> list[str]:
        return [self.cluster or "all clusters", "recoveries"]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="rh-state", classes="state-line")
        with VerticalScroll():
            with Vertical(classes="panel", id="rh-list-pane") as p:
                p.border_title = "Recoveries"
                p.border_subtitle = "a: acknowledge"
                yield RecoveryTable(id="rh-list")
            with Vertical(classes="panel", id="rh-steps-pane") as p:
                p.border_title = "Steps"
                yield Static(id="rh-summary")
                yield StepTable(id="rh-steps")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.query_one("#rh-state", Static).update(Text("reading the recovery history…", style="dim"))
        self.set_interval(POLL, self._poll)
        self._poll()
        self.query_one("#rh-list", RecoveryTable).focus()

    # ---- data ----------------------------------------------------------------------
    def action_refresh_now(self) -> None:
        self._poll()

    @work(thread=True, exclusive=True, group="recoveries-poll")
    def _poll(self) -> None:
        records, errors = [], {}
        for c in self.clusters():
            try:
                records += self.engine.recoveries(c)
            except UserError as e:  # the engine is away: what was read last stays, with why
                errors[c] = str(e)
                records += [r for r in self.records if r.cluster == c]
        records.sort(key=lambda r: r.started)
        self.app.call_from_thread(self._take, records, errors)

    def _take(self, records: list, errors: dict[str, str]) -> None:
        changed = records != self.records or errors != self.errors or not self.loaded
        self.records, self.errors, self.loaded = records, errors, True
        if changed:
            self.render_records()

    # ---- view ----------------------------------------------------------------------
    def shown(self) -> list:
        """The records the table shows: newest first, the filter applied."""
        out = [r for r in reversed(self.records)
               if self.matches(r.id, r.cluster, r.kind, r.outcome, r.acknowledged_by, r.old_primary,
                               r.new_primary, r.actor, when(r.started))]
        return out

    def render_records(self) -> None:
        shown = self.shown()
        rows = [(key_of(r), {"id": r.id, "cluster": r.cluster, "kind": r.kind, "started": when(r.started),
                             "duration": duration_text(r.duration_ms), "result": outcome_text(r.outcome),
                             "ack": ack_text(r)}) for r in shown]
        table = self.query_one("#rh-list", RecoveryTable)
        table.show(rows)
        self.query_one("#rh-state", Static).update(self.state_text())
        self.render_selected()

    def state_text(self) -> Text:
        where = self.cluster or ", ".join(self.engine.config.clusters)
        t = Text()
        t.append(f"recoveries of {where}: ", style="bold")
        t.append(str(len(self.records)))
        unacked = sum(1 for r in self.records if r.acknowledged is False)
        if unacked:
            t.append(f"   {unacked} NOT acknowledged (a)", style="bold yellow")
        running = [r for r in self.records if r.outcome == "running"]
        for r in running:
            t.append(f"   {r.kind} of {r.cluster} running", style="bold yellow")
        if self.filter_text:
            t.append(f"   filter: {self.filter_text} ({len(self.shown())} shown)", style="cyan")
        for c, e in self.errors.items():
            t.append(f"\n{c}: {e}", style="red")
        if not self.records and not self.errors:
            t.append("\nno recovery recorded yet (a switchover, failover or reattach writes one)",
                     style="dim")
        return t

    def selected(self):
        key = self.query_one("#rh-list", RecoveryTable).selected()
        return next((r for r in self.records if key_of(r) == key), None)

    def render_selected(self) -> None:
        r = self.selected()
        pane = self.query_one("#rh-steps-pane")
        summary = self.query_one("#rh-summary", Static)
        steps = self.query_one("#rh-steps", StepTable)
        if r is None:
            pane.border_title = "Steps"
            summary.update("")
            steps.sync([])
            return
        pane.border_title = f"Steps of {r.kind} {r.id}"
        steps.sync(step_rows(r.steps))
        summary.update(self.summary_text(r))

    def summary_text(self, r) -> Text:
        t = Text()
        t.append(f"{r.kind} of {r.cluster}: ")
        t.append_text(outcome_text(r.outcome))
        if r.old_primary or r.new_primary:
            t.append(f"   primary {r.old_primary or '?'} -> {r.new_primary or '?'}")
        if r.actor:
            t.append(f"   by {r.actor}")
        if r.acknowledged:
            t.append(f"   acknowledged by {r.acknowledged_by or '?'}"
                     + (f" at {when(r.acknowledged_at)}" if r.acknowledged_at else ""))
        elif r.acknowledged is False:
            t.append("   NOT acknowledged", style="bold yellow")
        for key in ("error", "lost", "salvaged", "errant", "rolled_back", "traffic"):
            v = r.summary.get(key) if isinstance(r.summary, dict) else None
            if v:
                t.append(f"\n{key}: ", style="red" if key in ("error", "lost") else "bold")
                t.append(", ".join(map(str, v)) if isinstance(v, list) else str(v))
        if not r.steps:
            t.append("\nno step journal (only the anti-flapping record)", style="dim")
        if r.journal:
            t.append(f"\njournal {r.journal}", style="dim")
        return t

    @on(DataTable.RowHighlighted, "#rh-list")
    def _highlighted(self) -> None:
        self.render_selected()

    def apply_filter(self) -> None:
        self.render_records()

    # ---- acknowledge -----------------------------------------------------------------
    def action_acknowledge(self) -> None:
        r = self.selected()
        cluster = r.cluster if r is not None else self.cluster
        if not cluster:
            self.notify("no recovery selected: choose one of the cluster to acknowledge",
                        severity="warning")
            return

        def done(ok: bool | None) -> None:
            if ok:
                self._acknowledge(cluster)

        self.app.push_screen(ConfirmDialog(
            "Acknowledge recoveries",
            f"Acknowledge every recovery of {cluster}. This lifts the anti-flapping block: a "
            f"later dead primary of {cluster} is again failed over automatically (when "
            f"automatic failover is on).", cluster, action_label="Acknowledge"), done)

    @work(thread=True, group="recoveries-actions")
    def _acknowledge(self, cluster: str) -> None:
        try:
            out = self.engine.acknowledge(cluster, confirm=cluster)
        except UserError as e:
            self.app.call_from_thread(self.notify, str(e), severity="error")
            return
        self.app.call_from_thread(self.notify, str(out))
        self.app.call_from_thread(self._poll)
