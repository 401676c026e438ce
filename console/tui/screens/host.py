"""One host, drilled down (Enter on the dashboard's host table): its
processlist (filter with `/`, sort with `O`, EXPLAIN a running statement
with `e`, kill its query `k` or its connection `K`, both confirmed by
typing the session id), metadata-lock waits (who blocks whom: what stalls a
cut-over), the full replica status, the global variables that differ from
the other hosts, and QPS / threads graphs with their scale.

Every figure comes from the engine (``engine.host_info``: in this process,
or through the API) in a worker thread; the screen never waits on a server.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Header,
    Input,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
)

from console.errors import UserError
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.help import HelpScreen, bindings_of

PROCESS_COLUMNS = (("id", "Id"), ("user", "User"), ("db", "Db"), ("command", "Command"),
                   ("time", "Time s"), ("state", "State"), ("trx", "Trx"), ("info", "Statement"))
HISTORY = 60  # samples kept for the graphs


def rate_series(samples: list[tuple[float, dict]], counter: str) -> list[float]:
    """Per-second rates of a counter between consecutive samples."""
    out = []
    for (t0, a), (t1, b) in zip(samples, samples[1:], strict=False):
        if counter in a and counter in b and t1 > t0:
            out.append(max(0.0, (b[counter] - a[counter]) / (t1 - t0)))
    return out


def scale_label(name: str, unit: str, values: list[float]) -> Text:
    """A graph's title with its scale: the last value, min and max, zero based."""
    if not values:
        return Text(f"{name}: no sample yet", style="dim")
    return Text.assemble((f"{name} ", "bold"), f"{values[-1]:.1f} {unit}",
                         (f"   (0 .. max {max(values):.1f}, min {min(values):.1f}, "
                          f"last {len(values)} samples)", "dim"))


def matches(row: dict, needle: str) -> bool:
    return not needle or any(needle.lower() in str(v).lower() for v in row.values() if v is not None)


class HostScreen(Screen):
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("escape", "app.pop_screen", "Back", key_display="Esc"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("O", "sort", "Sort order"),
        Binding("e", "explain", "Explain"),
        Binding("k", "kill_query", "Kill query"),
        Binding("K", "kill_connection", "Kill conn"),
        Binding("r", "refresh_now", "Refresh"),
    ]
    FOOTER_KEEP = ("kill_query",)  # narrow footers keep k (K and the rest: `?`)

    def __init__(self, engine, cluster: str, host: str):
        super().__init__()
        self.engine, self.cluster, self.host = engine, cluster, host
        self.rows: list[dict] = []
        self.sort_by = "time"
        self.samples: list[tuple[float, dict]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="host-tabs"):
            with TabPane("Processlist", id="tab-processlist"):
                yield Input(placeholder="filter (any column)", id="host-filter")
                yield DataTable(id="host-processlist", cursor_type="row", zebra_stripes=True)
            with TabPane("Locks", id="tab-locks"):
                yield Static("", id="host-locks")
            with TabPane("Replication", id="tab-replication"):
                yield DataTable(id="host-replication", cursor_type="row")
            with TabPane("Variables", id="tab-variables"):
                yield DataTable(id="host-variables", cursor_type="row")
            with TabPane("Graphs", id="tab-status"):
                with Vertical():
                    yield Static("", id="host-qps-label")
                    yield Sparkline([0.0], id="host-qps")
                    yield Static("", id="host-threads-label")
                    yield Sparkline([0.0], id="host-threads")
                    yield Static("", id="host-innodb")
        yield Static("", id="host-note")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.title = f"{self.cluster} > {self.host}"
        self.sub_title = "host"
        table = self.query_one("#host-processlist", DataTable)
        for key, label in PROCESS_COLUMNS:
            table.add_column(label, key=key)
        for tid, cols in (("#host-replication", ("Field", "Value")),
                          ("#host-variables", ("Variable", "Here", "Other hosts"))):
            t = self.query_one(tid, DataTable)
            for c in cols:
                t.add_column(c, key=c.lower())
        self.query_one("#host-filter", Input).display = False
        self.set_interval(max(1.0, getattr(self.app, "refresh_interval", 1.0)), self._poll)
        self._poll()
        table.focus()

    # ---- data ----------------------------------------------------------------------------

    def _active(self) -> str:
        return (self.query_one("#host-tabs", TabbedContent).active or "tab-processlist")[4:]

    @on(TabbedContent.TabActivated)
    def _tab(self) -> None:
        self._poll()

    def action_refresh_now(self) -> None:
        self._poll()

    @work(thread=True, exclusive=True, group="host-poll")
    def _poll(self) -> None:
        what = self._active()
        try:
            stat = self.engine.host_info(self.cluster, self.host, "status")
            data = stat if what == "status" else self.engine.host_info(self.cluster, self.host, what)
        except UserError as e:
            self.app.call_from_thread(self._note, f"{self.host}: {e}", "red")
            return
        self.app.call_from_thread(self._show, what, data, stat)

    def _note(self, text: str, style: str = "") -> None:
        try:
            self.query_one("#host-note", Static).update(Text(text, style=style))
        except NoMatches:  # the screen was closed while its worker asked the engine
            pass

    def _show(self, what: str, data, stat: dict) -> None:
        try:
            self._show_now(what, data, stat)
        except NoMatches:  # the screen was closed while its worker asked the engine
            pass

    def _show_now(self, what: str, data, stat: dict) -> None:
        self.samples = (self.samples + [(time.monotonic(), stat["counters"])])[-HISTORY:]
        self._note(f"{self.host}: {what} at {time.strftime('%H:%M:%S')}", "dim")
        if what == "processlist":
            self.rows = data
            self._render_processlist()
        elif what == "locks":
            self._render_locks(data)
        elif what == "replication":
            self._render_pairs(data)
        elif what == "variables":
            self._render_variables(data)
        self._render_graphs(stat)

    def _render_processlist(self) -> None:
        table = self.query_one("#host-processlist", DataTable)
        needle = self.query_one("#host-filter", Input).value.strip()
        rows = [r for r in self.rows if matches(r, needle)]
        rows.sort(key=lambda r: -(r["time"] or 0) if self.sort_by == "time" else r["id"])
        keep = table.cursor_row
        table.clear()
        for r in rows:
            trx = "yes" if r.get("trx_started") else ""
            table.add_row(str(r["id"]), r["user"] or "", r["db"] or "", r["command"] or "",
                          f"{r['time']:.1f}", r["state"] or "", trx,
                          (r["info"] or "")[:200], key=str(r["id"]))
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1))

    def _render_locks(self, data: dict) -> None:
        if not data["waits"]:
            text = Text(f"no session waits for a lock ({data['how']})", style="green")
        else:
            text = Text()
            for w in data["waits"]:
                text.append(f"session {w['waiting']} waits {w['time']:.1f}s: {w['state']}\n",
                            style="bold yellow")
                text.append(f"    {(w['info'] or '')[:160]}\n")
                for b in w["blocked_by"]:
                    text.append(f"    blocked by session {b['id']} ({b['user']}, "
                                f"{b['time']:.1f}s{', open transaction' if b['in_transaction'] else ''})"
                                f": {(b['info'] or 'idle')[:120]}\n", style="red")
            text.append(f"\nholders: {data['how']}", style="dim")
        self.query_one("#host-locks", Static).update(text)

    def _render_pairs(self, channels: list[dict]) -> None:
        table = self.query_one("#host-replication", DataTable)
        table.clear()
        if not channels:
            table.add_row("-", "not a replica")
        for ch in channels:
            for k, v in ch.items():
                table.add_row(k, "" if v is None else str(v))

    def _render_variables(self, diffs: list[dict]) -> None:
        table = self.query_one("#host-variables", DataTable)
        table.clear()
        if not diffs:
            table.add_row("-", "the same on every host", "")
        for d in diffs:
            others = ", ".join(f"{h}={v}" for h, v in d["others"].items())
            table.add_row(d["variable"], d["here"][:60], others[:120])

    def _render_graphs(self, stat: dict) -> None:
        qps = rate_series(self.samples, "Questions")
        threads = [float(c.get("Threads_running", 0)) for _, c in self.samples]
        self.query_one("#host-qps-label", Static).update(scale_label("queries", "/s", qps))
        self.query_one("#host-qps", Sparkline).data = [0.0, *qps] if qps else [0.0]
        self.query_one("#host-threads-label", Static).update(
            scale_label("threads running", "", threads))
        self.query_one("#host-threads", Sparkline).data = [0.0, *threads] if threads else [0.0]
        inn = stat.get("innodb", {})
        self.query_one("#host-innodb", Static).update(Text(
            "InnoDB: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in inn.items()
                                   if v is not None), style="dim"))

    # ---- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(
            f"{self.cluster} > {self.host}", bindings_of(self),
            "Tabs: processlist, locks (who blocks whom), replication, variables that differ "
            "from the other hosts, graphs. Kills ask for the session id typed."))

    def action_filter(self) -> None:
        f = self.query_one("#host-filter", Input)
        f.display = True
        f.focus()

    @on(Input.Changed, "#host-filter")
    def _filter(self) -> None:
        self._render_processlist()

    @on(Input.Submitted, "#host-filter")
    def _filter_done(self) -> None:
        self.query_one("#host-processlist", DataTable).focus()

    def action_sort(self) -> None:
        self.sort_by = "id" if self.sort_by == "time" else "time"
        self.notify(f"processlist sorted by {self.sort_by}")
        self._render_processlist()

    def _selected(self) -> int | None:
        table = self.query_one("#host-processlist", DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_explain(self) -> None:
        if (sid := self._selected()) is not None:
            self._explain(sid)

    @work(thread=True, group="host-actions")
    def _explain(self, sid: int) -> None:
        try:
            plan = self.engine.host_info(self.cluster, self.host, "explain", sid)
        except UserError as e:
            self.app.call_from_thread(self.notify, str(e), severity="warning")
            return
        lines = [" | ".join(f"{k}={v}" for k, v in row.items() if v is not None) for row in plan]
        self.app.call_from_thread(self.app.push_screen, HelpScreen(
            f"EXPLAIN of session {sid}", [], "\n".join(lines) or "no plan"))

    def action_kill_query(self) -> None:
        self._ask_kill(query_only=True)

    def action_kill_connection(self) -> None:
        self._ask_kill(query_only=False)

    def _ask_kill(self, *, query_only: bool) -> None:
        sid = self._selected()
        if sid is None:
            return
        row = next((r for r in self.rows if r["id"] == sid), {})
        what = "the query of session" if query_only else "session"
        dialog = ConfirmDialog(f"Kill {what} {sid} on {self.host}?",
                               f"{row.get('user')} {row.get('command')} {row.get('time', 0):.0f}s: "
                               f"{(row.get('info') or '')[:200]}", str(sid),
                               action_label="Kill")

        def done(ok: bool | None) -> None:
            if ok:
                self._kill(sid, query_only)

        self.app.push_screen(dialog, done)

    @work(thread=True, group="host-actions")
    def _kill(self, sid: int, query_only: bool) -> None:
        try:
            out = self.engine.kill_session(self.cluster, self.host, sid, query_only=query_only,
                                           confirm=str(sid))
        except UserError as e:
            self.app.call_from_thread(self.notify, str(e), severity="error")
            return
        self.app.call_from_thread(self.notify, out)
        self._poll()
