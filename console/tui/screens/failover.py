"""The failover screen: topology with roles, lag and GTID positions; the
candidate ranking with reasons; a live step-by-step view of a running
recovery.

Keys: ``s`` switchover to the selected candidate, ``F`` emergency failover,
``d`` dry run (plan) of a switchover to the selected candidate, ``a``
acknowledge the last recovery, ``t`` toggle automatic failover.  ``s`` and
``F`` need the cluster name typed in a confirmation dialog.  The screen
refreshes from ``task.status()`` on a timer; commands run in worker threads.
"""

from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from console.errors import UserError
from console.tui.widgets.actions import TaskActions
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.tables import sync_rows
from console.tui.widgets.topology import HostTable, TopologyTree

CAND_COLS = (("rank", "#"), ("name", "candidate"), ("address", "address"), ("reasons", "reasons"))
STEP_COLS = (("outcome", "outcome"), ("ms", "ms"), ("name", "step"), ("target", "target"),
             ("detail", "detail"))


class FailoverScreen(TaskActions, Screen):
    DEFAULT_CSS = """
    FailoverScreen #fo-topology { height: auto; max-height: 12; }
    FailoverScreen #fo-tree { width: 40; height: auto; max-height: 12; }
    FailoverScreen #fo-hosts { height: auto; max-height: 12; }
    FailoverScreen #fo-candidates { height: auto; max-height: 10; }
    FailoverScreen #fo-steps { height: auto; max-height: 16; }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("s", "switchover", "Switchover to selected"),
        Binding("F", "failover", "Emergency failover"),
        Binding("d", "plan", "Dry run"),
        Binding("a", "acknowledge", "Acknowledge"),
        Binding("t", "toggle_auto", "Auto on/off"),
    ]

    def __init__(self, engine, task_id: str):
        super().__init__()
        self.engine, self.task_id = engine, task_id
        self._plan_steps = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static(id="fo-verdict")
            yield Label("topology")
            with Horizontal(id="fo-topology"):
                yield TopologyTree(self._cluster_name(), id="fo-tree")
                yield HostTable(id="fo-hosts")
            yield Label("candidates (s: switch over to the selected one)")
            yield DataTable(id="fo-candidates", cursor_type="row")
            yield Label("recovery steps", id="fo-steps-label")
            yield DataTable(id="fo-steps", cursor_type="row")
            yield Static(id="fo-report")
        yield Footer()

    def on_mount(self) -> None:
        for tid, cols in (("#fo-candidates", CAND_COLS), ("#fo-steps", STEP_COLS)):
            t = self.query_one(tid, DataTable)
            for key, label in cols:
                t.add_column(label, key=key)
        self.sub_title = self.task_id
        self.set_interval(self.app.refresh_interval if hasattr(self.app, "refresh_interval") else 1.0,
                          self.refresh_view)
        self.refresh_view()
        self.query_one("#fo-candidates", DataTable).focus()

    def _cluster_name(self) -> str:
        return self.detail().cluster

    # ---- view -------------------------------------------------------------------
    def detail(self):
        return self.engine.task(self.task_id).status().detail

    def refresh_view(self) -> None:
        d = self.detail()
        if d is None:
            return
        v = d.verdict
        auto = "[b]on[/b]" if d.auto else "off"
        text = f"cluster [b]{d.cluster}[/b]: {v.state if v else 'checking'}"
        if v:
            text += f" — {v.reason}"
        text += f"\nautomatic failover {auto}"
        if d.recovering:
            text += f"   [b yellow]{d.recovering} running[/b yellow]"
        if d.blocked:
            text += f"\n[red]{d.blocked}[/red] (a: acknowledge)"
        for a in d.advice:
            text += f"\n[yellow]advice:[/yellow] {a}"
        self.query_one("#fo-verdict", Static).update(text)
        self.query_one("#fo-tree", TopologyTree).update_topology(d.topology)
        self.query_one("#fo-hosts", HostTable).update_hosts([d.topology] if d.topology else [])
        cands = [(c.address, {"rank": str(c.rank) if c.eligible else "--", "name": c.name,
                              "address": c.address, "reasons": "; ".join(c.reasons)})
                 for c in d.candidates]
        sync_rows(self.query_one("#fo-candidates", DataTable), CAND_COLS, cands)
        steps = d.steps if (d.recovering or self._plan_steps is None) else self._plan_steps
        rows = [(str(i), {"outcome": s.outcome, "ms": f"{s.ms:.0f}" if s.ms else "",
                          "name": s.name, "target": s.target, "detail": s.detail or " | ".join(s.sql)[:120]})
                for i, s in enumerate(steps)]
        sync_rows(self.query_one("#fo-steps", DataTable), STEP_COLS, rows)
        r = d.last_report
        if r is not None and not d.recovering:
            parts = [f"last {r.kind}: [b]{r.outcome}[/b] {r.old_primary} -> {r.new_primary}"]
            if r.error:
                parts.append(f"[red]{r.error}[/red]")
            if r.write_block_ms is not None:
                parts.append(f"write block {r.write_block_ms:.0f} ms")
            if r.kind == "failover" and r.outcome == "ok":
                parts.append(f"lost: {r.lost or 'nothing'}")
            if r.salvaged_from:
                parts.append("salvaged from " + escape("; ".join(r.salvaged_from)))
            if r.not_repointed:
                parts.append("NOT repointed: " + "; ".join(r.not_repointed))
            if r.traffic:
                style = "red" if r.traffic.startswith("failed") else "green"
                parts.append(f"[{style}]haproxy {escape(r.traffic)}[/{style}]")
            self.query_one("#fo-report", Static).update("   ".join(parts))

    def selected_candidate(self) -> str | None:
        t = self.query_one("#fo-candidates", DataTable)
        if not t.row_count:
            return None
        key, _ = t.coordinate_to_cell_key(t.cursor_coordinate)
        return key.value

    # ---- actions ------------------------------------------------------------------
    def _confirm_then(self, title: str, message: str, name: str, **args) -> None:
        cluster = self.detail().cluster

        def done(ok: bool | None) -> None:
            if ok:
                self._plan_steps = None
                self._cmd(name, confirm=cluster, **args)

        self.app.push_screen(ConfirmDialog(title, message, cluster, action_label=title), done)

    def action_switchover(self) -> None:
        to = self.selected_candidate()
        if not to:
            self.notify("no candidate selected", severity="warning")
            return
        self._confirm_then("Switchover", f"Fence the primary and promote {to}.", "switchover", to=to)

    def action_failover(self) -> None:
        self._confirm_then("Emergency failover",
                           "Stop replication, salvage, and promote the best replica of the dead primary.",
                           "failover")

    def action_plan(self) -> None:
        self._plan(self.selected_candidate() or "")

    def action_acknowledge(self) -> None:
        self._cmd("acknowledge")

    def action_toggle_auto(self) -> None:
        self._cmd("auto", on=not self.detail().auto)

    @work(thread=True, group="failover-actions")
    def _plan(self, to: str) -> None:
        try:
            rep = self.engine.command(self.task_id, "plan", kind="switchover", to=to)
        except UserError as e:
            self.app.call_from_thread(self.notify, str(e), severity="error")
            return
        self._plan_steps = rep.steps
        msg = f"dry run: {rep.outcome}" + (f": {rep.error}" if rep.error else f", {len(rep.steps)} steps")
        self.app.call_from_thread(self.notify, msg)
        self.app.call_from_thread(self.refresh_view)
