"""The Textual App.  Screens only read snapshots and send commands."""

from __future__ import annotations

from importlib.resources import files

from textual import work
from textual.app import App

from console.engine.engine import Engine
from console.engine.topology.monitor import MonitorTask, monitor_id
from console.errors import UserError

# the .tcss files ship inside the package (console/themes), so an installed
# wheel finds them where a source checkout does
THEMES_DIR = files("console") / "themes"
# config theme name -> (Textual colour theme, our .tcss file in console/themes/)
THEMES = {
    "dark": ("textual-dark", "dark.tcss"),
    "light": ("textual-light", "light.tcss"),
    "solarized": ("solarized-dark", "solarized.tcss"),
}


def _css_paths() -> list[str]:
    return [str(THEMES_DIR / "base.tcss")]


class ConsoleApp(App):
    TITLE = "dbops-console"
    CSS_PATH = _css_paths()

    def __init__(self, engine: Engine, *, start_monitors: bool = True, autostart: bool = True):
        super().__init__()
        self.engine = engine
        self.refresh_interval = engine.config.ui.refresh_interval
        self.start_monitors = start_monitors
        self.autostart = autostart
        self.theme_name = engine.config.ui.theme

    @property
    def remote(self) -> bool:
        """The engine runs in another process (``serve``): this console is its client."""
        return getattr(self.engine, "remote", False)

    def on_mount(self) -> None:
        self.apply_theme(self.theme_name)
        if self.remote:
            how = "started by this console" if self.engine.started_here else "attached"
            self.title = f"dbops-console · engine pid {self.engine.pid} ({how})"
            self.start_monitors = self.autostart = False  # the engine runs them
        if self.start_monitors:
            for cluster in self.engine.config.clusters.values():
                tid = monitor_id(cluster.name)
                try:
                    self.engine.task(tid)
                except UserError:
                    self.engine.add_task(MonitorTask(cluster, self.refresh_interval)).start()
        from console.tui.screens.dashboard import DashboardScreen

        self.push_screen(DashboardScreen(self.engine))
        if self.autostart:
            self._start_autostart_tasks()

    @work(thread=True, group="autostart")
    def _start_autostart_tasks(self) -> None:
        """``autostart = true`` tasks start when the console opens (their start
        checks talk to the servers: a worker, never the screen)."""
        for name, error in self.engine.start_autostart_tasks().items():
            if error:
                self.call_from_thread(self.notify, f"autostart {name}: {error}", severity="error")

    def action_quit(self) -> None:
        """Quit; a console that started the engine asks first when tasks run
        there: keep them running in the background, or stop them all."""
        running = self.engine.running_tasks() if self.remote and self.engine.started_here else []
        if not running:
            self.exit()
            return
        from console.tui.widgets.quit_dialog import KEEP, STOP, QuitDialog

        def chosen(answer: str | None) -> None:
            if answer == STOP:
                import os
                import signal

                os.kill(self.engine.pid, signal.SIGTERM)  # every task checkpoints and stops
                self.exit(message=f"stopping the engine (pid {self.engine.pid}) and its tasks")
            elif answer == KEEP:
                self.exit(message=f"the engine (pid {self.engine.pid}) keeps running "
                                  f"{', '.join(running)}; open the console again to see them")

        self.push_screen(QuitDialog(self.engine.pid, running), chosen)

    def declare_task(self, name: str, kind: str, cluster: str, autostart: bool,
                     options: dict) -> str:
        """Write ``[tasks.NAME]`` into the config file and apply it: through
        the engine's API (checked there, then its reload), or, with the
        engine in this console, here (checked, written, the new config
        taken).  Raises a UserError carrying ``problems`` when refused.
        Talks to the engine or the disk: call it from a worker."""
        body = {"kind": kind, "cluster": cluster, "autostart": autostart, **options}
        if self.remote:
            from urllib.parse import quote

            out = self.engine.client.request("PUT", f"/api/v1/tasks/{quote(name, safe='')}", body)
            return f"declared {name} in {out['config']} ({out['reload']})"
        from console.api.config_edit import declare_task
        from console.config import load_config

        path = self.engine.config.path
        if path is None:
            raise UserError("this console runs without a config file: nothing to declare into")
        declare_task(path, name, kind, cluster, autostart, options)
        self.engine.set_config(load_config(path))
        self.engine.audit("operator", "declare", name, "ok", f"{kind} in {path}")
        if autostart:
            self.engine.start_declared(name)
        return f"declared {name} in {path}" + (" and started it" if autostart else "")

    def apply_theme(self, name: str) -> None:
        textual_theme, tcss = THEMES.get(name, THEMES["dark"])
        self.theme = textual_theme
        self.theme_name = name
        path = THEMES_DIR / tcss
        self.stylesheet.add_source(path.read_text(), read_from=(str(path), ""))
        self.stylesheet.reparse()
        self.stylesheet.update(self)

    def cycle_theme(self) -> None:
        names = list(THEMES)
        nxt = names[(names.index(self.theme_name) + 1) % len(names)] if self.theme_name in names else "dark"
        self.apply_theme(nxt)
        self.notify(f"theme {nxt}")

    def set_refresh_interval(self, seconds: float) -> None:
        self.refresh_interval = seconds
        for cluster in self.engine.config.clusters:
            try:
                self.engine.command(monitor_id(cluster), "interval", seconds=seconds)
            except UserError:
                pass
