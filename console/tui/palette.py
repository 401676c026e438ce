"""The command palette's (Ctrl+P) commands: every action of the screen in
front (from its bindings), go to a cluster, host or task, start a task,
switchover, failover, recovery history, snapshot, restore, theme, and a screenshot saved into
the state directory.  Built from the snapshots the screens read (no server
is asked here)."""

from __future__ import annotations

from functools import partial

from textual.app import SystemCommand

from console.errors import UserError

# Textual's own commands we replace: its Screenshot writes to ~/Downloads
# (refused when that does not exist), its Theme does not load our .tcss
REPLACED = {"Screenshot", "Theme"}


def screen_commands(app, screen):
    """One command per described binding of the screen: "Relay: Pause (p)"."""
    from console.tui.widgets.help import SKIP_ACTIONS, key_name

    name = getattr(screen, "HELP_TITLE", "") or type(screen).__name__.removesuffix("Screen")
    seen = set()
    for key, b in type(screen)._merged_bindings:
        if not b.description or b.action in SKIP_ACTIONS or b.action in seen:
            continue
        seen.add(b.action)
        keys = b.key_display or key_name(key)
        yield SystemCommand(f"{name}: {b.description} ({keys})", f"the {keys} key of this screen",
                            partial(screen.run_action, b.action))


def _dashboard(app):
    from console.tui.screens.dashboard import DashboardScreen

    while not isinstance(app.screen, DashboardScreen) and len(app.screen_stack) > 1:
        app.pop_screen()
    return app.screen if isinstance(app.screen, DashboardScreen) else None


def go_host(app, cluster: str, address: str) -> None:
    dash = _dashboard(app)
    if dash is None or not dash.select_host(cluster, address):
        app.notify(f"host {address} is not in the host table (a filter?)", severity="warning")


def go_cluster(app, cluster: str, failover_task: str | None) -> None:
    if failover_task:
        app.open_task(failover_task)
        return
    dash = _dashboard(app)
    if dash is not None:
        dash.query_one(f"#tree-{cluster}").focus()


def on_task_screen(app, tid: str, action: str) -> None:
    """Open the task's screen and run one of its actions (its own dialogs ask)."""
    mounted = app.open_task(tid)
    if mounted is None:
        return
    screen = app.screen

    async def run() -> None:
        await mounted
        await screen.run_action(action)

    app.run_worker(run(), group="palette")


def console_commands(app, screen, system):
    for cmd in system:
        if cmd.title not in REPLACED:
            yield cmd
    yield from screen_commands(app, screen)
    statuses = [st for st in app.engine.statuses()]
    failover_of = {st.detail.cluster: st.task_id for st in statuses
                   if st.kind == "failover" and st.detail is not None}
    for cluster in app.engine.config.clusters:
        yield SystemCommand(f"Go to cluster {cluster}", "its failover screen, else its topology tree",
                            partial(go_cluster, app, cluster, failover_of.get(cluster)))
    for st in statuses:
        if st.kind == "monitor" and st.detail is not None and st.detail.topology is not None:
            for h in st.detail.topology.hosts:
                yield SystemCommand(f"Go to host {h.name} ({st.detail.cluster}, {h.address})",
                                    "its row in the dashboard's host table",
                                    partial(go_host, app, st.detail.cluster, h.address))
    tasks = [st.task_id for st in statuses if st.kind != "monitor"]
    for tid in tasks:
        yield SystemCommand(f"Go to task {tid}", "open the task's screen", partial(app.open_task, tid))
    for name in app.engine.config.tasks:
        yield SystemCommand(f"Start task {name}", "start the declared task (a finished one asks first)",
                            partial(app.start_task, name))
    yield SystemCommand("Recovery history", "every recovery of every cluster, with its steps",
                        partial(recovery_history, app, None))
    for cluster in app.engine.config.clusters:
        yield SystemCommand(f"Recovery history {cluster}", "the cluster's recoveries: steps, who "
                            "acknowledged them; acknowledge", partial(recovery_history, app, cluster))
    for cluster, tid in failover_of.items():
        yield SystemCommand(f"Switchover {cluster}", "pick the candidate, then type the cluster name",
                            partial(on_task_screen, app, tid, "switchover"))
        yield SystemCommand(f"Failover {cluster}", "emergency failover (type the cluster name)",
                            partial(on_task_screen, app, tid, "failover"))
    for st in statuses:
        if st.kind == "backup":
            yield SystemCommand(f"Snapshot {st.task_id}", "take a base snapshot now",
                                partial(snapshot, app, st.task_id))
            yield SystemCommand(f"Restore {st.task_id}", "point-in-time restore (a dialog asks where)",
                                partial(on_task_screen, app, st.task_id, "restore"))
    for theme in app.theme_names():
        yield SystemCommand(f"Theme {theme}", "colours of the console", partial(app.apply_theme, theme))
    yield SystemCommand("Screenshot", f"save an SVG of this screen into {app.screenshot_dir()}",
                        app.action_save_screenshot)


def recovery_history(app, cluster: str | None) -> None:
    from console.tui.screens.recoveries import RecoveriesScreen

    app.push_screen(RecoveriesScreen(app.engine, cluster))


def snapshot(app, tid: str) -> None:
    def run() -> None:
        try:
            result = app.engine.command(tid, "snapshot-now")
        except UserError as e:
            app.call_from_thread(app.notify, str(e), severity="error")
        else:
            app.call_from_thread(app.notify, str(result or f"snapshot of {tid} started"))

    app.run_worker(run, thread=True, group="actions")
