"""Relay screen: upstream vs relayed positions, lag gauge, throughput sparkline.
The upstream's position is polled on its own connection: the panel says
how old it is, and never shows it behind what was already relayed (the
engine shows the relayed position then, marked ``≥``).

Keys: p pause, u resume, m switch-master (pick a host of the discovered
topology, then type the task name to confirm), g purge old relay files
(typed confirmation), Esc back.  Reads one ``task.status()`` snapshot per
refresh; commands run in worker threads through ``engine.command``.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Header, Label, OptionList, Static
from textual.widgets.option_list import Option

from console.engine.relay.status import RelayStatus
from console.errors import UserError
from console.tui.screens.taskbase import TaskScreenBase, state_line
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.dialog import HELP
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.spark import Spark

GAUGE_WIDTH = 30
GAUGE_FULL_BYTES = 64 * 1024 * 1024  # a full bar: 64 MiB behind


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def lag_gauge(d: RelayStatus) -> str:
    if d.bytes_behind is None:
        return "lag  [dim]unknown (upstream position not read yet)[/dim]"
    frac = min(1.0, d.bytes_behind / GAUGE_FULL_BYTES)
    filled = round(frac * GAUGE_WIDTH)
    if d.bytes_behind and not filled:
        filled = 1
    color = "green" if frac < 0.1 else "yellow" if frac < 0.5 else "red"
    bar = f"[{color}]{'█' * filled}[/{color}]{'░' * (GAUGE_WIDTH - filled)}"
    secs = "-" if d.seconds_behind is None else f"{d.seconds_behind:.1f} s"
    state = "[green]caught up[/green]" if d.caught_up else f"{human_bytes(d.bytes_behind)} / {secs} behind"
    return f"lag  {bar}  {state}"


def polled_text(d: RelayStatus) -> str:
    """How old the upstream's figures are (polled on their own connection),
    and whether they show the relayed position because the poll was older."""
    if d.upstream_age is None:
        return "polled    [dim]not yet[/dim]"
    age = f"{d.upstream_age:.1f} s ago"
    if d.upstream_at_least:
        return f"polled    {age} [yellow](older than relayed)[/yellow]"
    return f"polled    {age}"


def position_panels(d: RelayStatus) -> tuple[str, str]:
    up = (f"{d.upstream}\n"
          f"position  {'≥ ' if d.upstream_at_least else ''}{d.upstream_file or '-'}:{d.upstream_pos}\n"
          f"GTID      {d.upstream_gtid or '-'}\n"
          f"{polled_text(d)}\n"
          f"identity  {d.upstream_identity or '-'}   "
          f"{'[green]connected[/green]' if d.connected else '[red]not connected[/red]'}\n"
          f"binlog retention {d.upstream_retention or '?'}")
    rel = (f"{d.relay_dir}\n"
           f"position  {d.relayed_file or '-'}:{d.relayed_pos}\n"
           f"GTID      {d.relayed_gtid or '-'}\n"
           f"subdir    {d.relayed_subdir or '-'}\n"
           f"on disk   {human_bytes(d.relay_bytes)} in {d.relay_files} file(s)")
    return up, rel


class TargetPicker(ModalScreen[str]):
    """Choose the new upstream among the cluster's hosts."""

    HELP_TITLE = "New upstream"
    HELP_NOTES = "Arrows choose, Enter picks (then the task name is asked for), Esc cancels."
    BINDINGS = [Binding("escape", "cancel", "Cancel"), HELP]

    def __init__(self, choices: list[tuple[str, str]]):
        super().__init__()
        self.choices = choices  # (target name, label)

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Label("Switch the relay to which upstream?", id="picker-title")
            yield OptionList(*[Option(label, id=name) for name, label in self.choices], id="picker-list")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id or "")

    def action_cancel(self) -> None:
        self.dismiss("")


def rates_text(st, d: RelayStatus) -> str:
    """Throughput only while streaming: a paused or stopped relay shows none."""
    if st.state != "running":
        rate = f"[yellow]{st.state}: no events flow[/yellow]"
    else:
        rate = f"[b]{d.events_per_s:.0f}[/b] events/s   [b]{d.mb_per_s:.2f}[/b] MB/s"
    return (f"{rate}   retries {d.retries}   semi-sync {d.semi_sync}"
            f"{f' ({d.acks} ACKs)' if d.acks else ''}")


class RelayScreen(TaskScreenBase):
    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("u", "resume", "Resume"),
        Binding("m", "switch_master", "Switch master"),
        Binding("g", "purge", "Purge"),
    ]
    HELP_NOTES = "m and g ask for the task name typed."

    DEFAULT_CSS = """
    TargetPicker { align: center middle; }
    TargetPicker #picker-box { width: 60; max-width: 100%; height: auto; border: thick $accent;
                               background: $surface; padding: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="rates", classes="state-line")
        with VerticalScroll():
            with Horizontal(id="positions", classes="row"):
                with Vertical(classes="panel") as up:
                    up.border_title = "Upstream"
                    yield Static(id="upstream")
                with Vertical(classes="panel") as rel:
                    rel.border_title = "Relayed (durable)"
                    yield Static(id="relayed")
            with Vertical(classes="panel") as lag:
                lag.border_title = "Lag and throughput"
                yield Static(id="gauge")
                yield Spark("MB/s", floor=1.0, fmt=lambda v: f"{v:.2f}", id="spark")
        yield ConsoleFooter()

    def render_status(self, st) -> None:
        d: RelayStatus = st.detail
        up, rel = position_panels(d)
        self.query_one("#upstream", Static).update(up)
        self.query_one("#relayed", Static).update(rel)
        self.query_one("#gauge", Static).update(lag_gauge(d))
        self.query_one("#rates", Static).update(state_line(st, rates_text(st, d)))
        self.query_one("#spark", Spark).set_values(d.mb_history if st.state == "running" else ())

    # ---- actions -------------------------------------------------------------

    def action_pause(self) -> None:
        self._cmd("pause")

    def action_resume(self) -> None:
        self._cmd("resume")

    def targets(self) -> list[tuple[str, str]]:
        """Hosts of the relay's cluster (discovered topology first), minus the current upstream."""
        st = self.snapshot()
        current = st.detail.upstream_address if st is not None else ""
        tc = self.engine.config.tasks.get(self.task_id)
        cluster = (tc.cluster or next(iter(self.engine.config.clusters), None)) if tc else None
        out: list[tuple[str, str]] = []
        try:
            from console.engine.topology.monitor import monitor_id

            topo = self.engine.task(monitor_id(cluster)).status().detail.topology if cluster else None
        except UserError:
            topo = None
        if topo is not None:
            for h in topo.hosts:
                if h.address != current:
                    state = h.role if h.reachable else h.down_word
                    out.append((h.name or h.address, f"{h.name} {h.address} ({state}, GTID {h.gtid_binlog_pos or '-'})"))
        elif cluster:
            for h in self.engine.config.cluster(cluster).hosts:
                if h.address != current:
                    out.append((h.name, f"{h.name} {h.address}"))
        return out

    def action_switch_master(self) -> None:
        choices = self.targets()
        if not choices:
            self.notify("no other host known for this relay's cluster", severity="warning")
            return

        def picked(target: str | None) -> None:
            if not target:
                return

            def confirmed(ok: bool | None) -> None:
                if ok:
                    self._cmd("switch-master", target=target, confirm=self.task_id)

            self.app.push_screen(ConfirmDialog(
                "Switch master",
                f"Point relay {self.task_id} at {target}? It continues by GTID in a new "
                f"subdirectory; an upstream that lacks relayed transactions is refused.",
                self.task_id, action_label="Switch"), confirmed)

        self.app.push_screen(TargetPicker(choices), picked)

    def action_purge(self) -> None:
        def confirmed(ok: bool | None) -> None:
            if ok:
                self._cmd("purge", all_old=True, confirm=self.task_id)

        self.app.push_screen(ConfirmDialog(
            "Purge relay files",
            f"Remove every relay file of {self.task_id} except the current one and those "
            f"readers have pinned?", self.task_id, action_label="Purge"), confirmed)
