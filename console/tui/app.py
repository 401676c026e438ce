"""The Textual App.  Screens only read snapshots and send commands."""

from __future__ import annotations

from textual import work
from textual.app import App
from textual.binding import Binding

from console.engine.engine import Engine
from console.engine.topology.monitor import MonitorTask, monitor_id
from console.errors import UserError
from console.tui.themes import THEMES, THEMES_DIR


def _css_paths() -> list[str]:
    return [str(THEMES_DIR / "base.tcss")]


class ConsoleApp(App):
    TITLE = "dbops-console"
    CSS_PATH = _css_paths()
    # `?` on every screen and dialog (a screen's own `?` shows it in its footer)
    BINDINGS = [Binding("question_mark,f1", "help", "Help", show=False, key_display="?")]

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
            self.update_title()
            self.set_interval(0.5, self.update_title)  # the engine may be replaced: a new pid
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

    def engine_title(self) -> str:
        """Which engine this console talks to (its pid, from the client's
        last connection), or that it lost it and reconnects."""
        e = self.engine
        if not getattr(e, "connected", True):
            return f"dbops-console · engine pid {e.pid} lost: reconnecting"
        how = "started by this console" if e.started_here else "attached"
        return f"dbops-console · engine pid {e.pid} ({how})"

    def update_title(self) -> None:
        title = self.engine_title()
        if self.title != title:
            self.title = title

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

    # ---- help, palette, tasks ------------------------------------------------
    def action_help(self) -> None:
        """The keys of the screen or dialog in front, generated from its bindings."""
        from console.tui.widgets.help import HelpScreen, bindings_of

        screen = self.screen
        if isinstance(screen, HelpScreen):
            screen.dismiss(None)
            return
        name = getattr(screen, "HELP_TITLE", "") or type(screen).__name__.removesuffix("Screen")
        self.push_screen(HelpScreen(f"{name} keys", bindings_of(screen),
                                    getattr(screen, "HELP_NOTES", "")))

    def get_system_commands(self, screen):
        from console.tui.palette import console_commands

        yield from console_commands(self, screen, super().get_system_commands(screen))

    def open_task(self, tid: str):
        """Open a running (or ended) task's screen (returns what awaits its
        mount); a declared task that is not started says how to start it."""
        try:
            self.engine.task(tid)
        except UserError:
            self.notify(f"{tid} is not started; press s to start it", severity="warning")
            return None
        from console.tui.screens.registry import screen_for

        return self.push_screen(screen_for(self.engine, tid))

    def start_task(self, tid: str) -> None:
        """Start a declared task; one that ran and ended (done, failed) asks
        first: running it again is a new run (a migration copies again)."""
        try:
            state = self.engine.task(tid).state
        except UserError:
            state = ""
        if state not in ("done", "failed"):
            self._start(tid)
            return
        from console.tui.widgets.ask import AskDialog

        def answered(yes: bool | None) -> None:
            if yes:
                self._start(tid)

        self.push_screen(AskDialog(f"Run {tid} again?",
                                   f"{tid} has ended ({state}). Start a new run of it from the config?",
                                   yes_label="Run again"), answered)

    @work(thread=True, group="actions")
    def _start(self, tid: str) -> None:
        try:
            self.engine.start_declared(tid)
            self.call_from_thread(self.notify, f"started {tid}")
        except UserError as e:
            self.call_from_thread(self.notify, str(e), severity="error")

    def screenshot_dir(self):
        return self.engine.config.state_dir / "screenshots"

    def action_save_screenshot(self) -> None:
        """An SVG of the screen into STATE_DIR/screenshots (made when needed)."""
        d = self.screenshot_dir()
        try:
            d.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(path=str(d))
        except OSError as e:
            self.notify(f"screenshot not saved: {e}", severity="error")
            return
        self.notify(f"screenshot saved: {path}")

    def apply_theme(self, name: str) -> None:
        textual_theme, tcss = THEMES.get(name, THEMES["dark"])
        self.theme = textual_theme
        self.theme_name = name
        path = THEMES_DIR / tcss
        self.stylesheet.add_source(path.read_text(), read_from=(str(path), ""))
        self.stylesheet.reparse()
        self.stylesheet.update(self)

    def theme_names(self) -> list[str]:
        return list(THEMES)

    def set_refresh_interval(self, seconds: float) -> None:
        self.refresh_interval = seconds
        for cluster in self.engine.config.clusters:
            try:
                self.engine.command(monitor_id(cluster), "interval", seconds=seconds)
            except UserError:
                pass
