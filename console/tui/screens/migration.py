"""The migration screen: progress with rows and ETA, copy and apply rate
sparklines, backlog, throttle state and reason, lag per control replica.

Keys: t throttle, n no-throttle, + / - chunk size x2 / /2, c cut-over now
(confirm by typing the table name), P panic (confirm by typing the table
name), escape back.  Refreshes from ``task.status()`` on a timer; every
action goes through ``engine.command`` in a worker thread."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ProgressBar, Sparkline, Static

from console.tui.widgets.actions import TaskActions
from console.tui.widgets.confirm import ConfirmDialog


def _secs(v: float | None) -> str:
    if v is None:
        return "-"
    v = int(v)
    return f"{v // 3600}h{v % 3600 // 60:02d}m" if v >= 3600 else f"{v // 60}m{v % 60:02d}s"


def _ms(v: float | None) -> str:
    return "?" if v is None else f"{v * 1000:.0f}ms"


def render_lines(st) -> dict[str, str]:
    """Texts of the screen's labels from one status snapshot (pure)."""
    d = st.detail
    lag = ", ".join(f"{n} {_ms(v)}" for n, v in d.replica_lags) or "no control replicas"
    return {
        "title": f"{d.database}.{d.table}  [b]{st.phase or st.state}[/b]  ({st.state})",
        "alter": f"ALTER: {d.alter}",
        "rows": f"rows {d.rows_copied:,} / {d.rows_estimate:,} ({d.percent:.1f}%)  "
                f"{d.copy_rate:,.0f} rows/s  ETA {_secs(d.eta_seconds)}",
        "apply": f"applied {d.events_applied:,} events  {d.apply_rate:,.0f}/s  backlog "
                 f"{'-' if d.backlog_bytes is None else f'{d.backlog_bytes:,} B'}  heartbeat lag "
                 f"{_ms(d.heartbeat_lag) if d.heartbeat_lag is not None else '-'}",
        "throttle": f"throttle: [b]{st.throttle_reason}[/b]" if st.throttle_reason else "throttle: no",
        "lags": f"replica lag: {lag}",
        "coords": f"binlog read {d.binlog_coordinates or '-'}  applied GTID {d.applied_pos or '-'}",
        "settings": f"chunk-size {d.chunk_size}  dml-batch-size {d.dml_batch_size}  nice-ratio "
                    f"{d.nice_ratio:g}  max-lag-millis {d.max_lag_millis}  key {d.unique_key or '-'}",
        "checksum": f"checksum: {d.checksum or '-'}  postponed: {'yes' if d.postponed else 'no'}  "
                    f"cut-over attempts: {d.cutover_attempts}",
        "error": f"[red]last error: {st.last_error}[/red]" if st.last_error else "",
    }


class MigrationScreen(TaskActions, Screen):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("t", "throttle", "Throttle"),
        Binding("n", "no_throttle", "No throttle"),
        Binding("plus,equals_sign", "chunk(2.0)", "Chunk x2"),
        Binding("minus", "chunk(0.5)", "Chunk /2"),
        Binding("c", "cut_over", "Cut-over now"),
        Binding("P", "panic", "Panic"),
    ]
    DEFAULT_CSS = """
    MigrationScreen Vertical#mig { padding: 0 1; }
    MigrationScreen ProgressBar { margin: 1 0; }
    MigrationScreen Sparkline { height: 3; width: 1fr; }
    MigrationScreen .spark-label { width: 12; }
    """

    def __init__(self, engine, task_id: str):
        super().__init__()
        self.engine, self.task_id = engine, task_id

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="mig"):
            for name in ("title", "alter"):
                yield Static(id=f"mig-{name}")
            yield ProgressBar(id="mig-progress", show_eta=False)
            for name in ("rows", "apply", "throttle", "lags", "coords", "settings", "checksum", "error"):
                yield Static(id=f"mig-{name}")
            with Horizontal():
                yield Label("copy rows/s", classes="spark-label")
                yield Sparkline([], id="mig-copy-spark")
            with Horizontal():
                yield Label("apply ev/s", classes="spark-label")
                yield Sparkline([], id="mig-apply-spark")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.task_id
        self.set_interval(getattr(self.app, "refresh_interval", 1.0), self.refresh_view)
        self.refresh_view()

    def _mig(self):
        return self.engine.task(self.task_id)

    def refresh_view(self) -> None:
        st = self._mig().status()
        for name, text in render_lines(st).items():
            self.query_one(f"#mig-{name}", Static).update(text)
        d = st.detail
        bar = self.query_one("#mig-progress", ProgressBar)
        bar.update(total=max(d.rows_estimate, d.rows_copied, 1),
                   progress=max(d.rows_estimate, d.rows_copied, 1) if d.percent >= 100 else d.rows_copied)
        self.query_one("#mig-copy-spark", Sparkline).data = list(d.copy_rate_history) or [0.0]
        self.query_one("#mig-apply-spark", Sparkline).data = list(d.apply_rate_history) or [0.0]
        self._last_refresh = time.monotonic()

    def action_throttle(self) -> None:
        self._cmd("throttle")

    def action_no_throttle(self) -> None:
        self._cmd("no-throttle")

    def action_chunk(self, factor: float) -> None:
        cur = self._mig().detail().chunk_size
        new = max(10, min(1_000_000, int(cur * factor)))
        self._cmd("set", setting="chunk-size", value=str(new))

    def _table(self) -> str:
        return self._mig().confirm_target()

    def action_cut_over(self) -> None:
        table = self._table()

        def done(ok: bool | None) -> None:
            if ok:
                self._cmd("cut-over")

        self.app.push_screen(ConfirmDialog(
            "Cut over now", f"Swap the ghost table in for {table} as soon as the copy is verified.",
            table, action_label="Cut over"), done)

    def action_panic(self) -> None:
        table = self._table()

        def done(ok: bool | None) -> None:
            if ok:
                self._cmd("panic", confirm=table)

        self.app.push_screen(ConfirmDialog(
            "PANIC", f"Stop the migration of {table} at once and drop the ghost table. "
                     f"The original table is left untouched.", table, action_label="Panic"), done)
