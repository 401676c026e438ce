"""The README's keyboard map, generated from the screens' bindings (a test
checks the README holds exactly this): ``python -m console.tui.keymap``."""

from __future__ import annotations

START, END = "<!-- keymap:start (python -m console.tui.keymap) -->", "<!-- keymap:end -->"


def screens() -> list[tuple[str, type]]:
    from console.tui.screens.backup import BackupScreen
    from console.tui.screens.dashboard import DashboardScreen
    from console.tui.screens.failover import FailoverScreen
    from console.tui.screens.host import HostScreen
    from console.tui.screens.log import LogScreen
    from console.tui.screens.migration import MigrationScreen
    from console.tui.screens.recoveries import RecoveriesScreen
    from console.tui.screens.relay import RelayScreen
    from console.tui.screens.task import TaskScreen

    return [("dashboard", DashboardScreen), ("audit log", LogScreen), ("relay", RelayScreen),
            ("migration", MigrationScreen), ("backup", BackupScreen), ("failover", FailoverScreen),
            ("recovery history", RecoveriesScreen), ("other tasks", TaskScreen), ("host", HostScreen)]


def rows() -> list[tuple[str, str, str]]:
    from console.tui.widgets.help import GLOBAL_KEYS, bindings_of

    out = [(k, "everywhere", d) for k, d in GLOBAL_KEYS]
    for where, cls in screens():
        out += [(k, where, d) for k, d in bindings_of(cls)]
    out.append(("Esc", "dialogs", "cancel (a dangerous action needs its target's name typed)"))
    return out


def markdown() -> str:
    lines = [START, "", "| key | where | action |", "|---|---|---|"]
    for key, where, desc in rows():
        shown = " ".join(f"`{k}`" for k in key.split(", "))
        lines.append(f"| {shown} | {where} | {desc} |")
    return "\n".join(lines + ["", END])


if __name__ == "__main__":
    print(markdown())
