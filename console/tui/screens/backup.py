"""The backup screen: checkpoint and lag, a timeline of segments and
snapshots, pause/resume, snapshot now, and the restore dialog.

Refreshes from ``task.status()`` on a timer; actions go through
``engine.command`` in worker threads (a restore takes a while).
"""

from __future__ import annotations

import os
import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Header, Static

from console.errors import UserError
from console.tui.screens.taskbase import TaskScreenBase, state_line
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.message import MessageDialog
from console.tui.widgets.restore_dialog import RestoreDialog
from console.tui.widgets.spark import Spark


def _t(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def status_lines(st) -> list[str]:
    d = st.detail
    lag = "?" if d.lag_seconds is None else f"{d.lag_seconds:.2f} s"
    lines = [
        f"[b]{st.task_id}[/b]  {st.state}/{st.phase}   source {d.source} "
        f"({'connected' if d.connected else 'not connected'})",
        f"checkpoint  GTID [b]{d.checkpoint_gtid or '-'}[/b]   last commit {_t(d.checkpoint_time)}",
        f"lag         {lag} behind the primary ({'caught up' if d.caught_up else 'behind'})   "
        f"source at {d.source_gtid or '-'}",
        f"stored      {d.segments} segments, {_mb(d.segment_bytes)}; {len(d.snapshots)} snapshots, "
        f"{_mb(d.snapshot_bytes)}   in {d.storage}",
        f"source      oldest binlog {d.source_oldest_binlog or '-'}; {d.source_retention or '-'} "
        f"(a pause longer than that loses continuity)",
    ]
    if d.snapshot_running:
        lines.append(f"[yellow]snapshot running: {d.snapshot_running}[/yellow]")
    if st.last_error:
        lines.append(f"[red]last error: {st.last_error}[/red]")
    return lines


def timeline_text(d) -> str:
    """Recent segments (time span, transactions) and the snapshots on one axis."""
    if not d.timeline and not d.snapshots:
        return "timeline: nothing stored yet"
    times = [t for seg in d.timeline for t in seg[:2]] + [s[2] for s in d.snapshots]
    lo, hi = min(times), max(times)
    width = 60
    span = max(1.0, hi - lo)
    axis = ["─"] * width
    for first, last, _ in d.timeline:
        for x in range(int((first - lo) / span * (width - 1)), int((last - lo) / span * (width - 1)) + 1):
            axis[x] = "█"
    for s in d.snapshots:
        axis[int((s[2] - lo) / span * (width - 1))] = "▲"
    return (f"{time.strftime('%H:%M:%S', time.localtime(lo))} {''.join(axis)} "
            f"{time.strftime('%H:%M:%S', time.localtime(hi))}   █ log segments  ▲ snapshots")


class BackupScreen(TaskScreenBase):
    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("u", "resume", "Resume"),
        Binding("b", "snapshot", "Snapshot now"),
        Binding("R", "restore", "Restore…"),
        Binding("v", "verify", "Verify"),
    ]
    HELP_NOTES = ("R opens the restore dialog (a free port is proposed), then asks for the target\n"
                  "directory typed; the result says how to reach the restored server.")
    DEFAULT_CSS = """
    BackupScreen #bk-snapshots { height: auto; max-height: 12; }
    """

    def __init__(self, engine, task_id: str):
        super().__init__(engine, task_id)
        self._snap_ids: tuple = ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="bk-state", classes="state-line")
        with VerticalScroll():
            with Vertical(classes="panel") as p:
                p.border_title = "Checkpoint"
                yield Static(id="bk-status")
            with Vertical(classes="panel") as p:
                p.border_title = "Timeline"
                yield Static(id="bk-timeline")
                yield Spark("transactions per segment", floor=10.0, fmt=lambda v: f"{v:.0f}",
                            id="bk-spark")
            with Vertical(classes="panel") as p:
                p.border_title = "Snapshots"
                yield DataTable(id="bk-snapshots", cursor_type="row")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        t = self.query_one("#bk-snapshots", DataTable)
        t.add_columns("id", "finished", "method", "size", "GTID")
        super().on_mount()

    def render_status(self, st) -> None:
        d = st.detail
        lag = "?" if d.lag_seconds is None else f"{d.lag_seconds:.2f} s"
        self.query_one("#bk-state", Static).update(state_line(
            st, f"checkpoint [b]{d.checkpoint_gtid or '-'}[/b]", f"lag [b]{lag}[/b]"))
        self.query_one("#bk-status", Static).update("\n".join(status_lines(st)[1:]))
        self.query_one("#bk-timeline", Static).update(timeline_text(d))
        self.query_one("#bk-spark", Spark).set_values([float(seg[2]) for seg in d.timeline])
        if d.snapshots != self._snap_ids:
            self._snap_ids = d.snapshots
            t = self.query_one("#bk-snapshots", DataTable)
            t.clear()
            for sid, method, finished, size, gtid in reversed(d.snapshots):
                t.add_row(sid, _t(finished), method, _mb(size), gtid, key=sid)

    # ---- actions ----------------------------------------------------------------

    def action_pause(self) -> None:
        self._cmd("pause")

    def action_resume(self) -> None:
        self._cmd("resume")

    def action_snapshot(self) -> None:
        self._cmd("snapshot-now")

    def action_verify(self) -> None:
        self.notify("verifying the backup…")
        self._cmd("verify")

    def action_restore(self) -> None:
        st = self.snapshot()
        if st is None:
            return
        d = st.detail
        default_time = _t(d.checkpoint_time) if d.checkpoint_time else ""
        stamp = time.strftime('%Y%m%d-%H%M%S')
        default_dir = (f"{d.storage.rstrip('/')}-restore-{stamp}" if d.storage.startswith("/")
                       else f"{os.path.expanduser('~')}/dbops-restore-{stamp}")  # s3://...

        def chosen(args: dict | None) -> None:
            if not args:
                return
            target = args["target_dir"]
            what = args.get("to_time") or args.get("to_gtid")

            def confirmed(ok: bool | None) -> None:
                if ok:
                    self.notify(f"restoring to {what} into {target}…")
                    self._restore(args)

            self.app.push_screen(ConfirmDialog(
                "Point-in-time restore",
                f"Prepare the newest snapshot before {what} in {target}, start a private mariadbd "
                f"on port {args['port']} and replay the log up to exactly {what}; the server is "
                f"{'kept running' if args.get('keep_running') else 'stopped'} afterwards. "
                f"The running cluster is not touched.", target, action_label="Restore"), confirmed)

        self.app.push_screen(RestoreDialog(default_time, default_dir), chosen)

    @work(thread=True, group="task-actions")
    def _restore(self, args: dict) -> None:
        """The restore blocks until done: its result (how to reach the server)
        stays on screen in a dialog, and as a notification."""
        try:
            result = str(self.engine.command(self.task_id, "restore", **args))
        except UserError as e:
            self.app.call_from_thread(self.notify, str(e), severity="error", timeout=10)
            self.app.call_from_thread(self.app.push_screen, MessageDialog("Restore refused", str(e)))
            return
        self.app.call_from_thread(self.notify, result, timeout=4)
        self.app.call_from_thread(self.app.push_screen, MessageDialog("Restore done", result))
