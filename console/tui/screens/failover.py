"""The failover screen: topology with roles, lag and GTID positions; the
candidate ranking with reasons; a live step-by-step view of a running
recovery.

Keys: ``S`` switchover to the selected candidate, ``F`` emergency failover,
``d`` dry run (plan) of a switchover to the selected candidate, ``a``
acknowledge the last recovery, ``o`` automatic failover on/off, ``h`` the
cluster's recovery history (``screens/recoveries.py``).  ``S``,
``F``, ``a`` and ``o`` need the cluster name typed in a confirmation dialog.  The
screen refreshes from one ``task.status()`` snapshot per timer tick;
commands run in worker threads.
"""

from __future__ import annotations

import time

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Header, Static

from console.errors import UserError
from console.tui.screens.taskbase import TaskScreenBase, state_line
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.steps import StepTable, step_rows
from console.tui.widgets.tables import ResponsiveTable
from console.tui.widgets.topology import HostTable, TopologyTree

CAND_COLS3 = (("rank", "#", 2), ("name", "candidate", 9), ("address", "address", 15),
              ("reasons", "reasons", 40))
CAND_COLS = tuple((k, label) for k, label, _ in CAND_COLS3)
VERDICT_STYLE = {"healthy": "green", "dead": "bold red", "primary-unreachable": "bold yellow",
                 "no-primary": "bold red", "unknown": "yellow"}


class CandidateTable(ResponsiveTable):
    COLUMNS = CAND_COLS3
    PRIORITY = ("name", "rank", "reasons", "address")


class FailoverScreen(TaskScreenBase):
    DEFAULT_CSS = """
    FailoverScreen #fo-topology { height: auto; max-height: 14; }
    FailoverScreen #fo-tree { height: auto; max-height: 12; }
    FailoverScreen #fo-tree-pane { max-width: 45%; }
    FailoverScreen #fo-hosts-pane { width: 1fr; }
    FailoverScreen #fo-hosts { height: auto; max-height: 12; }
    FailoverScreen #fo-candidates { height: auto; max-height: 10; }
    FailoverScreen #fo-steps { height: auto; max-height: 16; }
    """
    BINDINGS = [
        Binding("S", "switchover", "Switchover"),
        Binding("F", "failover", "Failover"),
        Binding("d", "plan", "Dry run"),
        Binding("a", "acknowledge", "Acknowledge"),
        Binding("o", "toggle_auto", "Auto on/off"),
        Binding("h", "history", "Recovery history"),
    ]
    HELP_NOTES = ("S switches over to the candidate selected in Candidates; S, F, a and o ask for\n"
                  "the cluster name typed. d shows the plan of a switchover without running it;\n"
                  "h opens the cluster's recovery history.")

    def __init__(self, engine, task_id: str):
        super().__init__(engine, task_id)
        self._plan_steps = None
        self._detail = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="fo-verdict", classes="state-line")
        with VerticalScroll():
            with Horizontal(id="fo-topology", classes="row"):
                with Vertical(id="fo-tree-pane", classes="panel") as p:
                    p.border_title = "Topology"
                    yield TopologyTree(self._cluster_name(), id="fo-tree")
                with Vertical(id="fo-hosts-pane", classes="panel") as p:
                    p.border_title = "Hosts"
                    yield HostTable(id="fo-hosts")
            with Vertical(classes="panel") as p:
                p.border_title = "Candidates"
                p.border_subtitle = "S: switch over to the selected one"
                yield CandidateTable(id="fo-candidates")
            with Vertical(classes="panel", id="fo-steps-pane") as p:
                p.border_title = "Recovery steps"
                yield StepTable(id="fo-steps")
                yield Static(id="fo-report")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#fo-candidates", CandidateTable).focus()

    def _cluster_name(self) -> str:
        return self.detail().cluster

    # ---- view -------------------------------------------------------------------
    def detail(self):
        """The detail of this refresh's snapshot (read again only outside a refresh)."""
        if self._detail is None:
            st = self.snapshot()
            return st.detail if st is not None else None
        return self._detail

    def refresh_view(self) -> None:
        st = self.snapshot()
        if st is None or st.detail is None:
            return
        self._detail = st.detail
        try:
            self.render_status(st)
        finally:
            self._detail = None

    def render_status(self, st) -> None:
        d = st.detail
        v = d.verdict
        verdict = Text(f"cluster {d.cluster}: {v.state if v else 'checking'}",
                       style=VERDICT_STYLE.get(v.state if v else "unknown", "bold"))
        if v:
            verdict.append(f" — {v.reason}")
        auto = Text("automatic failover ")
        auto.append("ON" if d.auto else "off", style="bold green" if d.auto else "bold")
        text = state_line(st, verdict, auto)
        if d.recovering:
            text.append(f"   {d.recovering} running", style="bold yellow")
        if d.blocked:
            text.append(f"\n{d.blocked} (a: acknowledge)", style="red")
        if not getattr(d, "recovery_enabled", True):
            text.append("\nautomatic recovery OFF", style="red")
            text.append(" (dbops-console topology recovery on)")
        for addr, until, reason in getattr(d, "downtime", ()):
            when = time.strftime("%H:%M:%S", time.localtime(until))
            text.append("\ndowntime: ", style="yellow")
            text.append(f"{addr} until {when}" + (f" ({reason})" if reason else ""))
        for a in d.advice:
            text.append("\nadvice: ", style="yellow")
            text.append(a)
        self.query_one("#fo-verdict", Static).update(text)
        tree = self.query_one("#fo-tree", TopologyTree)
        tree.update_topology(d.topology)
        self.query_one("#fo-tree-pane").styles.width = tree.content_width + 4  # sized to its content
        self.query_one("#fo-hosts", HostTable).update_hosts([d.topology] if d.topology else [])
        cands = [(c.address, {"rank": str(c.rank) if c.eligible else "--", "name": c.name,
                              "address": c.address, "reasons": "; ".join(c.reasons)})
                 for c in d.candidates]
        self.query_one("#fo-candidates", CandidateTable).sync(cands)
        steps = d.steps if (d.recovering or self._plan_steps is None) else self._plan_steps
        self.query_one("#fo-steps", StepTable).sync(step_rows(steps))
        r = d.last_report
        if r is not None and not d.recovering:
            parts = [f"last {r.kind}: [b]{r.outcome}[/b] {r.old_primary} -> {r.new_primary}"]
            if r.error:
                parts.append(f"[red]{escape(r.error)}[/red]")
            if r.write_block_ms is not None:
                parts.append(f"write block {r.write_block_ms:.0f} ms")
            if r.kind == "failover" and r.outcome == "ok":
                parts.append(f"lost: {r.lost or 'nothing'}")
            if r.salvaged_from:
                parts.append("salvaged from " + escape("; ".join(r.salvaged_from)))
            if r.not_repointed:
                parts.append("NOT repointed: " + escape("; ".join(r.not_repointed)))
            if r.traffic:
                style = "red" if r.traffic.startswith("failed") else "green"
                parts.append(f"[{style}]haproxy {escape(r.traffic)}[/{style}]")
            self.query_one("#fo-report", Static).update("   ".join(parts))

    def selected_candidate(self) -> str | None:
        t = self.query_one("#fo-candidates", CandidateTable)
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
        """Lifting the anti-flapping block asks first (the cluster name typed),
        as on the recovery history screen."""
        cluster = self.detail().cluster

        def done(ok: bool | None) -> None:
            if ok:
                self._cmd("acknowledge")

        self.app.push_screen(ConfirmDialog(
            "Acknowledge recoveries",
            f"Acknowledge every recovery of {cluster}. This lifts the anti-flapping block: a later "
            f"dead primary of {cluster} is again failed over automatically (when automatic failover "
            f"is on).", cluster, action_label="Acknowledge"), done)

    def action_history(self) -> None:
        from console.tui.screens.recoveries import RecoveriesScreen

        self.app.push_screen(RecoveriesScreen(self.engine, self.detail().cluster))

    def action_toggle_auto(self) -> None:
        """Automatic failover on or off asks first (the cluster name typed)."""
        d = self.detail()
        turn_on = not d.auto
        message = (f"Turn automatic failover ON for {d.cluster}: a dead primary is then replaced "
                   f"without asking anyone." if turn_on else
                   f"Turn automatic failover OFF for {d.cluster}: a dead primary then waits for an "
                   f"operator (F).")

        def done(ok: bool | None) -> None:
            if ok:
                self._cmd("auto", on=turn_on)

        self.app.push_screen(ConfirmDialog(f"Automatic failover {'on' if turn_on else 'off'}", message,
                                           d.cluster, action_label="Turn on" if turn_on else "Turn off"),
                             done)

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
