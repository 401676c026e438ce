"""Dashboard: topology trees, host table, lag sparklines, task list, event log.

Reads only immutable snapshots (monitor and task statuses) on a timer; every
action goes through ``engine.command`` (or starts a task) in a worker thread.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, RichLog, Sparkline, Static

from console.engine.task import DONE, FAILED, NEW, PAUSED, RUNNING
from console.engine.topology.monitor import MonitorDetail, monitor_id
from console.errors import UserError
from console.tui.format import clean, lag_text
from console.tui.widgets.help import HelpScreen, bindings_of
from console.tui.widgets.tables import sync_rows
from console.tui.widgets.topology import HostTable, TopologyTree

TASK_COLUMNS = (("task", "Task"), ("kind", "Kind"), ("state", "State"), ("phase", "Phase"),
                ("summary", "Progress"), ("throttle", "Throttle"), ("error", "Last error"))
STATE_STYLE = {RUNNING: "green", PAUSED: "yellow", FAILED: "bold red", DONE: "dim", NEW: "cyan"}
LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "", "refused": "red", "failed": "bold red"}


class LagRow(Horizontal):
    def __init__(self, address: str, name: str, data: list[float], value):
        super().__init__(classes="lag-row")
        self.address, self.host_name = address, name
        self._initial = (data, value)

    def compose(self) -> ComposeResult:
        data, value = self._initial
        yield Label(self.host_name, classes="lag-name")
        yield Sparkline(data, summary_function=max, classes="lag-spark")
        yield Label(value, classes="lag-value")


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
        Binding("minus", "slower", "Slower", key_display="-"),
        Binding("enter", "open_task", "Open task", show=False),
        Binding("s", "start_task", "Start task"),
        Binding("p", "pause_task", "Pause/resume"),
        Binding("n", "new_task", "New task"),
        Binding("l", "show_log", "Audit log"),
        Binding("t", "next_theme", "Theme"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, engine):
        super().__init__(id="dashboard")
        self.engine = engine
        self._event_seq = 0
        self._lag_rows: dict[str, LagRow] = {}

    # ---- layout --------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="top"):
            with VerticalScroll(id="trees"):
                for name in self.engine.config.clusters:
                    yield TopologyTree(name, id=f"tree-{name}", classes="topology")
            with Vertical(id="right"):
                yield Static("Hosts", classes="pane-title")
                yield HostTable(id="hosts")
                yield Static("Replica lag", classes="pane-title")
                yield VerticalScroll(id="lags")
        with Horizontal(id="bottom"):
            with Vertical(id="tasks-pane"):
                yield Static("Tasks", classes="pane-title")
                yield DataTable(id="tasks")
            with Vertical(id="events-pane"):
                yield Static("Events", classes="pane-title")
                yield RichLog(id="events", markup=False, wrap=True, max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        tasks = self.query_one("#tasks", DataTable)
        tasks.cursor_type = "row"
        for key, label in TASK_COLUMNS:
            tasks.add_column(label, key=key)
        self.sub_title = f"refresh every {self.app.refresh_interval:g}s"
        self._refresh_timer = self.set_interval(self.app.refresh_interval, self.refresh_view)
        self.refresh_view()
        tasks.focus()  # the task list is where the operator acts

    def on_screen_resume(self) -> None:
        if self.focused is None:
            self.query_one("#tasks", DataTable).focus()

    # ---- refresh ---------------------------------------------------------------
    def monitor_details(self) -> list[MonitorDetail]:
        out = []
        for name in self.engine.config.clusters:
            try:
                d = self.engine.task(monitor_id(name)).status().detail
            except UserError:
                continue
            if d is not None:
                out.append(d)
        return out

    def refresh_view(self) -> None:
        details = self.monitor_details()
        topos = [d.topology for d in details if d.topology is not None]
        for d in details:
            try:
                self.query_one(f"#tree-{d.cluster}", TopologyTree).update_topology(d.topology)
            except Exception:  # noqa: BLE001 - cluster without a tree widget
                pass
        self.query_one(HostTable).update_hosts(topos)
        self._update_lags(details)
        self._update_tasks()
        self._update_events()

    def _update_lags(self, details: list[MonitorDetail]) -> None:
        box = self.query_one("#lags", VerticalScroll)
        current = {f"{d.cluster}/{h.address}" for d in details if d.topology
                   for h in d.topology.hosts if h.role in ("replica", "intermediate")}
        for key in [k for k in self._lag_rows if k not in current]:  # promoted or gone
            self._lag_rows.pop(key).remove()
        for d in details:
            if d.topology is None:
                continue
            for h in d.topology.hosts:
                if h.role not in ("replica", "intermediate"):
                    continue
                key = f"{d.cluster}/{h.address}"
                hist = (clean(d.history(h.address)) or [0.0])[-60:]
                value = lag_text(h) if h.reachable else Text(h.down_word, style="red")
                row = self._lag_rows.get(key)
                if row is None:
                    row = LagRow(h.address, h.name, hist, value)
                    self._lag_rows[key] = row
                    box.mount(row)
                    continue
                try:
                    row.query_one(Sparkline).data = hist
                    row.query_one(".lag-value", Label).update(value)
                except Exception:  # noqa: BLE001 - not composed yet: next refresh
                    continue

    def task_rows(self) -> list[tuple[str, dict]]:
        rows = []
        seen = set()
        for st in self.engine.statuses():
            if st.kind == "monitor":
                continue
            seen.add(st.task_id)
            rows.append((st.task_id, {
                "task": st.task_id, "kind": st.kind,
                "state": Text(st.state, style=STATE_STYLE.get(st.state, "")),
                "phase": st.phase or "-", "summary": st.summary or "",
                "throttle": Text(st.throttle_reason, style="yellow") if st.throttle_reason else "",
                "error": Text(st.last_error[:60], style="red") if st.last_error else "",
            }))
        for name, tc in self.engine.config.tasks.items():
            if name not in seen:
                rows.append((name, {"task": name, "kind": tc.kind,
                                    "state": Text("not started", style="dim"), "phase": "-",
                                    "summary": "press s to start", "throttle": "", "error": ""}))
        return rows

    def _update_tasks(self) -> None:
        sync_rows(self.query_one("#tasks", DataTable), TASK_COLUMNS, self.task_rows())

    def _update_events(self) -> None:
        log = self.query_one("#events", RichLog)
        for seq, e in self.engine.events_since(self._event_seq):
            self._event_seq = seq
            if e.action == "phase":
                continue
            t = time.strftime("%H:%M:%S", time.localtime(e.ts))
            style = LEVEL_STYLE.get(e.action if e.actor == "monitor" else e.outcome, "")
            if e.actor == "monitor":
                log.write(Text(f"{t} {e.outcome}", style=style))
            else:
                detail = f" {e.detail}" if e.detail else ""
                log.write(Text(f"{t} {e.actor} {e.action} {e.target}: {e.outcome}{detail}", style=style))

    # ---- actions ---------------------------------------------------------------
    def selected_task(self) -> str | None:
        table = self.query_one("#tasks", DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001
            return None

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(
            "Dashboard keys", bindings_of(self),
            "Tab moves between panes; arrows move in tables. Enter on a task opens its screen.\n"
            "Health: ● up, ▲ lagging or writable replica, ✖ unreachable or replication error."))

    def action_refresh_now(self) -> None:
        self._refresh_monitors()

    @work(thread=True, exclusive=True, group="refresh")
    def _refresh_monitors(self) -> None:
        for name in self.engine.config.clusters:
            try:
                self.engine.task(monitor_id(name)).refresh()
            except Exception:  # noqa: BLE001 - shown by the next snapshot
                pass
        self.app.call_from_thread(self.refresh_view)

    def _set_interval(self, seconds: float) -> None:
        seconds = round(min(60.0, max(0.2, seconds)), 2)
        self.app.set_refresh_interval(seconds)
        self._refresh_timer.stop()
        self._refresh_timer = self.set_interval(seconds, self.refresh_view)
        self.sub_title = f"refresh every {seconds:g}s"
        self.notify(f"refresh interval {seconds:g}s")

    def action_faster(self) -> None:
        self._set_interval(self.app.refresh_interval / 2)

    def action_slower(self) -> None:
        self._set_interval(self.app.refresh_interval * 2)

    def action_open_task(self) -> None:
        tid = self.selected_task()
        if not tid:
            return
        try:
            self.engine.task(tid)
        except UserError:
            self.notify(f"{tid} is not started; press s to start it", severity="warning")
            return
        from console.tui.screens.registry import screen_for

        self.app.push_screen(screen_for(self.engine, tid))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "tasks":
            self.action_open_task()
        elif event.data_table.id == "hosts" and event.row_key.value:
            from console.tui.screens.host import HostScreen

            cluster, _, address = str(event.row_key.value).partition("/")
            self.app.push_screen(HostScreen(self.engine, cluster, address))

    def action_start_task(self) -> None:
        tid = self.selected_task()
        if tid:
            self._start(tid)

    @work(thread=True, group="actions")
    def _start(self, tid: str) -> None:
        try:
            self.engine.start_declared(tid)
            self.app.call_from_thread(self.notify, f"started {tid}")
        except UserError as e:
            self.app.call_from_thread(self.notify, str(e), severity="error")

    def action_new_task(self) -> None:
        from console.tui.widgets.declare_form import DeclareTaskForm

        def done(said: str | None) -> None:
            if said:
                self.notify(said)
                self.refresh_view()

        self.app.push_screen(DeclareTaskForm(list(self.engine.config.clusters)), done)

    def action_pause_task(self) -> None:
        tid = self.selected_task()
        if not tid:
            return
        try:
            st = self.engine.task(tid).state
        except UserError as e:
            self.notify(str(e), severity="warning")
            return
        self._command(tid, "resume" if st == PAUSED else "pause")

    @work(thread=True, group="actions")
    def _command(self, tid: str, name: str) -> None:
        try:
            self.engine.command(tid, name)
            self.app.call_from_thread(self.notify, f"{name}: {tid}")
        except UserError as e:
            self.app.call_from_thread(self.notify, str(e), severity="error")

    def action_show_log(self) -> None:
        from console.tui.screens.log import LogScreen

        self.app.push_screen(LogScreen(self.engine))

    def action_next_theme(self) -> None:
        self.app.cycle_theme()
