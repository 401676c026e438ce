"""The restore dialog: pick a time (or GTID), a new target directory, a port,
and whether the restored server is kept running.

Dismisses with ``None`` (cancelled) or a dict ``{to_time|to_gtid, target_dir,
port, keep_running}``; the caller then asks for a typed confirmation of the
directory.  Bad input (the restore's own directory and port checks) is
reported in the dialog in one line and nothing happens.
"""

from __future__ import annotations

import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from console.engine.backup.mysqld import check_directory, check_port
from console.errors import UserError
from console.mysql.mariadbd import port_free
from console.tui.widgets.dialog import HELP


def free_port(start: int = 3307, tries: int = 200) -> int:
    """The first port from ``start`` no server listens on (the default the
    dialog proposes); ``start`` itself when none of them is free."""
    for port in range(start, min(65536, start + tries)):
        if port_free(port):
            return port
    return start


def check(point: str, target_dir: str, port: str, keep_running: bool = False
          ) -> tuple[dict | None, str]:
    """(arguments, "") when the input is usable, else (None, the reason)."""
    point, target_dir, port = point.strip(), target_dir.strip(), port.strip()
    args: dict = {}
    if not point:
        return None, "give a time (YYYY-MM-DD HH:MM:SS) or a GTID (D-S-N)"
    try:
        time.strptime(point, "%Y-%m-%d %H:%M:%S")
        args["to_time"] = point
    except ValueError:
        parts = point.split("-")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            args["to_gtid"] = point
        else:
            return None, f"{point!r} is neither YYYY-MM-DD HH:MM:SS nor a GTID like 0-1-100"
    if not target_dir:
        return None, "give a new target directory"
    if not port.isdigit():
        return None, f"port must be a number between 1024 and 65535, got {port!r}"
    try:
        d = check_directory(target_dir)
        check_port(int(port))
    except UserError as e:
        return None, str(e)
    args.update(target_dir=str(d), port=int(port), keep_running=keep_running)
    return args, ""


class RestoreDialog(ModalScreen):
    HELP_TITLE = "Restore dialog"
    HELP_NOTES = "Tab moves between the fields; Enter checks them and then asks for the directory typed."
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("enter", "submit", "Restore…", show=False), HELP]
    DEFAULT_CSS = """
    RestoreDialog { align: center middle; }
    RestoreDialog #restore-box { width: 84; max-width: 100%; height: auto; max-height: 100%;
                                 border: thick $warning; padding: 0 1; background: $surface;
                                 overflow-y: auto; }
    RestoreDialog #restore-buttons { height: auto; }
    """

    def __init__(self, default_time: str, default_dir: str, default_port: int | None = None):
        super().__init__()
        port = free_port() if default_port is None else default_port
        self.defaults = (default_time, default_dir, str(port))

    def compose(self) -> ComposeResult:
        t, d, p = self.defaults
        with Vertical(id="restore-box"):
            yield Label("Point-in-time restore (into a new directory; the cluster is not touched)",
                        id="restore-title")
            yield Label("Restore to (time YYYY-MM-DD HH:MM:SS, or GTID):")
            yield Input(value=t, id="restore-point")
            yield Label("Target directory (new or empty):")
            yield Input(value=d, id="restore-dir")
            yield Label("Port of the restored server (a free one is proposed):")
            yield Input(value=p, id="restore-port")
            yield Checkbox("Keep the restored server running afterwards", False, id="restore-keep")
            yield Static("[dim]Unchecked, the server stops once the data is in place. The result "
                         "says how to reach it.[/dim]", id="restore-hint")
            yield Static("", id="restore-error")
            with Horizontal(id="restore-buttons"):
                yield Button("Restore…", variant="warning", id="restore-ok")
                yield Button("Cancel", id="restore-cancel")

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.cursor_blink = False  # a steady cursor: always visible, and the same in every picture
        self.query_one("#restore-point", Input).focus()

    def _submit(self) -> None:
        args, why = check(self.query_one("#restore-point", Input).value,
                          self.query_one("#restore-dir", Input).value,
                          self.query_one("#restore-port", Input).value,
                          self.query_one("#restore-keep", Checkbox).value)
        if args is None:
            self.query_one("#restore-error", Static).update(f"[red]{why}[/red]")
            return
        self.dismiss(args)

    def action_submit(self) -> None:
        self._submit()

    @on(Button.Pressed, "#restore-ok")
    def _ok(self) -> None:
        self._submit()

    @on(Input.Submitted)
    def _entered(self) -> None:
        self._submit()

    @on(Button.Pressed, "#restore-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
