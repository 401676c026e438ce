"""The migration screen: the state, progress and ETA on top; then titled
panels (copy, apply, throttle and lag, cut-over) and the rate sparklines
with their units.

Keys: t throttle, n no-throttle, + / - chunk size x2 / /2, c cut-over now
(confirm by typing the table name), P panic (confirm by typing the table
name), Esc back.  Refreshes from one ``task.status()`` snapshot on a timer;
every action goes through ``engine.command`` in a worker thread."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Header, ProgressBar, Static

from console.tui.format import duration
from console.tui.screens.taskbase import TaskScreenBase, state_line
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.spark import Spark


def _ms(v: float | None) -> str:
    return "?" if v is None else f"{v * 1000:.0f}ms"


def _rate(v: float) -> str:
    return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"


def live(st) -> bool:
    """Rates, ETA and heartbeat lag mean something only while it runs."""
    return st.state == "running" and st.phase not in ("panicked", "aborted", "complete", "failed")


def render_lines(st) -> dict[str, str]:
    """Texts of the screen's parts from one status snapshot (pure)."""
    d = st.detail
    on = live(st)
    lag = ", ".join(f"{n} {_ms(v)}" for n, v in d.replica_lags) if on else ""
    eta = duration(d.eta_seconds) if on else ("paused" if st.state == "paused" else "-")
    hb = _ms(d.heartbeat_lag) if on and d.heartbeat_lag is not None else "-"
    return {
        "title": f"{d.database}.{d.table}  [b]{st.phase or st.state}[/b]  ({st.state})",
        "head": f"[b]{d.percent:.1f}%[/b]   ETA [b]{eta}[/b]",
        "alter": f"ALTER: {d.alter}",
        "rows": f"rows {d.rows_copied:,} / {d.rows_estimate:,} ({d.percent:.1f}%)\n"
                f"{d.copy_rate if on else 0:,.0f} rows/s  ETA {eta}",
        "apply": f"applied {d.events_applied:,} events  {d.apply_rate if on else 0:,.0f}/s\nbacklog "
                 f"{'-' if d.backlog_bytes is None or not on else f'{d.backlog_bytes:,} B'}  "
                 f"heartbeat lag {hb}",
        "throttle": f"throttle: [b]{st.throttle_reason}[/b]" if st.throttle_reason else "throttle: no",
        "lags": f"replica lag: {lag or ('-' if not on else 'no control replicas')}",
        "coords": f"read {d.binlog_coordinates or '-'}\napplied GTID {d.applied_pos or '-'}",
        "settings": f"chunk-size {d.chunk_size}  dml-batch-size {d.dml_batch_size}\nnice-ratio "
                    f"{d.nice_ratio:g}  max-lag-millis {d.max_lag_millis}  key {d.unique_key or '-'}",
        "checksum": f"checksum: {d.checksum or '-'}\npostponed: {'yes' if d.postponed else 'no'}  "
                    f"attempts: {d.cutover_attempts}",
        "error": f"[red]last error: {st.last_error}[/red]" if st.last_error else "",
    }


PANELS = (("Copy", ("rows", "settings")), ("Apply", ("apply", "coords")),
          ("Throttle and lag", ("throttle", "lags")), ("Cut-over", ("checksum", "alter")))


class MigrationScreen(TaskScreenBase):
    BINDINGS = [
        Binding("t", "throttle", "Throttle"),
        Binding("n", "no_throttle", "No throttle"),
        Binding("c", "cut_over", "Cut-over"),
        Binding("P", "panic", "Panic"),
        Binding("plus,equals_sign", "chunk(2.0)", "Chunk size x2", key_display="+", show=False),
        Binding("minus", "chunk(0.5)", "Chunk size /2", key_display="-", show=False),
    ]
    HELP_NOTES = "c and P ask for the table name typed; + and - change the chunk size live."
    DEFAULT_CSS = """
    MigrationScreen #mig-progress { width: 1fr; padding: 0 1; }
    MigrationScreen #mig-progress Bar { width: 1fr; }
    MigrationScreen #mig-head { width: auto; }
    MigrationScreen #mig-top { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="mig-title", classes="state-line")
        with Horizontal(id="mig-top"):
            yield ProgressBar(id="mig-progress", show_eta=False, show_percentage=False)
            yield Static(id="mig-head", classes="state-line")
        with VerticalScroll(id="mig-body"):
            for pair in (PANELS[:2], PANELS[2:]):
                with Horizontal(classes="row"):
                    for title, parts in pair:
                        with Vertical(classes="panel") as panel:
                            panel.border_title = title
                            for name in parts:
                                yield Static(id=f"mig-{name}")
            with Vertical(classes="panel", id="mig-rates") as rates:
                rates.border_title = "Rates"
                yield Spark("copy rows/s", floor=100.0, fmt=_rate, id="mig-copy-spark")
                yield Spark("apply ev/s ", floor=10.0, fmt=_rate, id="mig-apply-spark")
            yield Static(id="mig-error")
        yield ConsoleFooter()

    def render_status(self, st) -> None:
        lines = render_lines(st)
        for name, text in lines.items():
            if name == "title":
                self.query_one("#mig-title", Static).update(
                    state_line(st, f"[b]{st.detail.database}.{st.detail.table}[/b]", lines["throttle"]))
            elif name != "head":
                self.query_one(f"#mig-{name}", Static).update(text)
        self.query_one("#mig-head", Static).update(lines["head"])
        d = st.detail
        total = max(d.rows_estimate, d.rows_copied, 1)
        self.query_one("#mig-progress", ProgressBar).update(
            total=total, progress=total if d.percent >= 100 else d.rows_copied)
        on = live(st)
        self.query_one("#mig-copy-spark", Spark).set_values(d.copy_rate_history if on else ())
        self.query_one("#mig-apply-spark", Spark).set_values(d.apply_rate_history if on else ())

    def action_throttle(self) -> None:
        self._cmd("throttle")

    def action_no_throttle(self) -> None:
        self._cmd("no-throttle")

    def action_chunk(self, factor: float) -> None:
        st = self.snapshot()
        if st is None:
            return
        new = max(10, min(1_000_000, int(st.detail.chunk_size * factor)))
        self._cmd("set", setting="chunk-size", value=str(new))

    def _table(self) -> str:
        return self.engine.task(self.task_id).confirm_target()

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
