"""Dashboard: topology trees, host table, lag sparklines, task list, event log.

Reads only immutable snapshots (monitor and task statuses) on a timer; every
action goes through ``engine.command`` (or starts a task) in a worker thread.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Header, Label, RichLog

from console.engine.topology.monitor import MonitorDetail, monitor_id
from console.errors import UserError
from console.tui.format import STATE_STYLE, clean, lag_text
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.spark import Spark
from console.tui.widgets.tables import ResponsiveTable
from console.tui.widgets.topology import HostTable, TopologyTree

TASK_COLUMNS3 = (("task", "Task", 12), ("state", "State", 8), ("summary", "Progress", 14),
                 ("phase", "Phase", 10), ("kind", "Kind", 9), ("throttle", "Throttle", 10),
                 ("error", "Last error", 30))
TASK_COLUMNS = tuple((k, label) for k, label, _ in TASK_COLUMNS3)
LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "", "refused": "red", "failed": "bold red"}
NARROW = 100  # columns below which the topology trees fold away (the host table has the roles)
SHORT = 30    # rows below which the lag sparklines fold away (the host table has the lags)


def lag_fmt(v: float) -> str:
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.1f} s"


class TaskTable(ResponsiveTable):
    COLUMNS = TASK_COLUMNS3
    PRIORITY = ("task", "state", "summary", "phase", "error", "throttle", "kind")


class LagRow(Horizontal):
    def __init__(self, address: str, name: str, data: list[float], value):
        super().__init__(classes="lag-row")
        self.address, self.host_name = address, name
        self._initial = (data, value)

    def compose(self) -> ComposeResult:
        data, value = self._initial
        yield Label(self.host_name, classes="lag-name")
        spark = Spark("", floor=1.0, fmt=lag_fmt, classes="lag-spark")
        spark.set_values(data)
        yield spark
        yield Label(value, classes="lag-value")


class DashboardScreen(ConsoleScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("enter", "open_task", "Open task", show=False),
        Binding("s", "start_task", "Start"),
        Binding("p", "pause_task", "Pause/resume"),
        Binding("N", "new_task", "New task"),
        Binding("l", "show_log", "Audit log"),
        Binding("plus,equals_sign", "faster", "Refresh faster", key_display="+", show=False),
        Binding("minus", "slower", "Refresh slower", key_display="-", show=False),
        Binding("q", "app.quit", "Quit"),
    ]
    FOOTER_KEEP = ("app.quit",)  # narrow footers keep q
    HELP_NOTES = ("Tab moves between panels; arrows move in tables. Enter on a task opens its screen;\n"
                  "s on a finished task asks before running it again. / filters hosts, tasks and events.\n"
                  "Health: ● up, ▲ lagging or writable replica, ✖ unreachable or replication error.")
    FILTERABLE = True

    def __init__(self, engine):
        super().__init__(id="dashboard")
        self.engine = engine
        self._event_seq = 0
        self._events: list[Text] = []
        self._lag_rows: dict[str, LagRow] = {}
        self._details: list[MonitorDetail] = []

    # ---- layout --------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="top"):
            with VerticalScroll(id="trees", classes="panel") as trees:
                trees.border_title = "Topology"
                for name in self.engine.config.clusters:
                    yield TopologyTree(name, id=f"tree-{name}", classes="topology")
            with Vertical(id="right"):
                with Vertical(id="hosts-pane", classes="panel") as hosts:
                    hosts.border_title = "Hosts"
                    yield HostTable(id="hosts")
                with VerticalScroll(id="lags", classes="panel") as lags:
                    lags.border_title = "Replica lag"
        with Horizontal(id="bottom"):
            with Vertical(id="tasks-pane", classes="panel") as tp:
                tp.border_title = "Tasks"
                yield TaskTable(id="tasks")
            with Vertical(id="events-pane", classes="panel") as ep:
                ep.border_title = "Events"
                yield RichLog(id="events", markup=False, wrap=True, max_lines=500, min_width=20)
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self._refresh_timer = self.set_interval(self.app.refresh_interval, self.refresh_view)
        self._show_interval()
        self.refresh_view()
        self.query_one("#tasks", DataTable).focus()  # the task list is where the operator acts

    def on_screen_resume(self) -> None:
        if self.focused is None:
            self.query_one("#tasks", DataTable).focus()
        super().on_screen_resume()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "narrow")
        self.set_class(event.size.height < SHORT, "short")
        self.call_after_refresh(self._rewrite_events)  # the events wrap again at the new width

    def _rewrite_events(self) -> None:
        log = self.query_one("#events", RichLog)
        log.clear()
        for line in self._events:
            if self.matches(line.plain):
                log.write(line)

    def crumbs(self) -> list[str]:
        parts = [", ".join(self.engine.config.clusters) or "no cluster"]
        if self.focused is self.query_one(HostTable) and self.query_one(HostTable).row_count:
            t = self.query_one(HostTable)
            key = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value or ""
            parts = [key.split("/", 1)[0], str(t.get_cell(key, "host"))]
        return parts

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "hosts":
            self.update_crumbs()

    def select_host(self, cluster: str, address: str) -> bool:
        """Put the host table's cursor on a host (the palette's "go to host")."""
        t = self.query_one(HostTable)
        key = f"{cluster}/{address}"
        if key not in t.rows:
            return False
        t.move_cursor(row=t.get_row_index(key))
        t.focus()
        return True

    # ---- refresh ---------------------------------------------------------------
    def refresh_view(self) -> None:
        """One snapshot of every task (monitors included) per refresh: the
        trees, hosts, lags and task list all show the same moment."""
        statuses = list(self.engine.statuses())
        self._details = [st.detail for st in statuses
                         if st.kind == "monitor" and isinstance(st.detail, MonitorDetail)]
        for d in self._details:
            try:
                self.query_one(f"#tree-{d.cluster}", TopologyTree).update_topology(d.topology)
            except Exception:  # noqa: BLE001 - cluster without a tree widget
                pass
        trees = self.query(TopologyTree)
        if trees:
            self.query_one("#trees").styles.width = min(60, max(t.content_width for t in trees) + 2)
        self._update_hosts()
        self._update_lags(self._details)
        self.query_one("#tasks", TaskTable).sync(
            (k, cells) for k, cells in self.task_rows(statuses) if self.matches(*cells.values()))
        self._update_events()

    def _update_hosts(self) -> None:
        topos = [d.topology for d in self._details if d.topology is not None]
        self.query_one(HostTable).update_hosts(
            topos, lambda h: self.matches(h.name, h.address, h.role, h.error, h.replication_error))

    def apply_filter(self) -> None:
        self.refresh_view()
        self._rewrite_events()

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
                hist = (clean(d.history(h.address)) or [0.0])[-120:]
                value = lag_text(h) if h.reachable else Text(h.down_word, style="red")
                row = self._lag_rows.get(key)
                if row is None:
                    row = LagRow(h.address, h.name, hist, value)
                    self._lag_rows[key] = row
                    box.mount(row)
                    continue
                try:
                    row.query_one(Spark).set_values(hist)
                    row.query_one(".lag-value", Label).update(value)
                except Exception:  # noqa: BLE001 - not composed yet: next refresh
                    continue

    def task_rows(self, statuses=None) -> list[tuple[str, dict]]:
        rows = []
        seen = set()
        statuses = self.engine.statuses() if statuses is None else statuses
        # engines sharing a fleet (serve --coordinator): each task names its engine
        fleet = len({st.engine for st in statuses if st.engine and st.kind != "monitor"}) > 1
        for st in statuses:
            if st.kind == "monitor":
                continue
            seen.add(st.task_id)
            rows.append((st.task_id, {
                "task": f"{st.task_id} @{st.engine}" if fleet and st.engine else st.task_id,
                "kind": st.kind,
                "state": Text(st.state, style=STATE_STYLE.get(st.state, "")),
                "phase": st.phase or "-", "summary": st.summary or "",
                "throttle": Text(st.throttle_reason, style="yellow") if st.throttle_reason else "",
                "error": Text(st.last_error[:60], style="red") if st.last_error else "",
            }))
        for name, tc in self.engine.config.tasks.items():
            if name not in seen:
                rows.append((name, {"task": name, "kind": tc.kind,
                                    "state": Text("not started", style=STATE_STYLE["not started"]),
                                    "phase": "-", "summary": "press s to start", "throttle": "",
                                    "error": ""}))
        return rows

    def _update_events(self) -> None:
        log = self.query_one("#events", RichLog)
        for seq, e in self.engine.events_since(self._event_seq):
            self._event_seq = seq
            if e.action == "phase":
                continue
            t = time.strftime("%H:%M:%S", time.localtime(e.ts))
            style = LEVEL_STYLE.get(e.action if e.actor == "monitor" else e.outcome, "")
            if e.actor == "monitor":
                line = Text(f"{t} {e.outcome}", style=style)
            else:
                detail = f" {e.detail}" if e.detail else ""
                line = Text(f"{t} {e.actor} {e.action} {e.target}: {e.outcome}{detail}", style=style)
            self._events = (self._events + [line])[-500:]
            if self.matches(line.plain):
                log.write(line)

    # ---- actions ---------------------------------------------------------------
    def selected_task(self) -> str | None:
        table = self.query_one("#tasks", DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001
            return None

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

    def _show_interval(self) -> None:
        self.query_one("#hosts-pane").border_subtitle = f"refresh every {self.app.refresh_interval:g}s (+/-)"

    def _set_interval(self, seconds: float) -> None:
        seconds = round(min(60.0, max(0.2, seconds)), 2)
        self.app.set_refresh_interval(seconds)
        self._refresh_timer.stop()
        self._refresh_timer = self.set_interval(seconds, self.refresh_view)
        self._show_interval()
        self.notify(f"refresh interval {seconds:g}s")

    def action_faster(self) -> None:
        self._set_interval(self.app.refresh_interval / 2)

    def action_slower(self) -> None:
        self._set_interval(self.app.refresh_interval * 2)

    def action_open_task(self) -> None:
        tid = self.selected_task()
        if tid:
            self.app.open_task(tid)

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
            self.app.start_task(tid)

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
        self._command(tid, "resume" if st == "paused" else "pause")

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
