"""Every screen's footer at 80 columns: no key cut in half or hidden under
the palette key; a footer whose keys do not fit keeps the important ones
and says so on `?` ("? Help (N more)"); at 200 columns every key shows, and
a resize lays the footer out again (fixed data: no server)."""

import pytest
from textual.widgets._footer import FooterKey

from console.tui.screens.host import HostScreen
from console.tui.screens.recoveries import RecoveriesScreen
from console.tui.widgets.footer import ConsoleFooter
from tests.tui.fixed_recoveries import write_recoveries
from tests.tui.screens_fixed import console


def _open(tid):
    async def go(app, pilot):
        app.open_task(tid)
    return go


async def _log(app, pilot):
    await pilot.press("l")


async def _recoveries(app, pilot):
    write_recoveries(app.engine.state.root)
    app.push_screen(RecoveriesScreen(app.engine, "prod"))


async def _host(app, pilot):
    app.engine.host_info = lambda c, h, what, *a: {"counters": {}, "innodb": {}} if what == "status" else []
    app.push_screen(HostScreen(app.engine, "prod", "db1"))


SCREENS = {"dashboard": None, "audit-log": _log, "relay": _open("relay-a"), "migration": _open("mig-orders"),
           "backup": _open("backup-a"), "failover": _open("failover:prod"), "task": _open("custom-1"),
           "recoveries": _recoveries, "host": _host}
# the keys an operator must find without `?` on every screen at 80 columns
MUST = {"dashboard": {"q", "/"}, "audit-log": {"Esc"}, "relay": {"Esc", "p", "m"},
        "migration": {"Esc", "c", "P"}, "backup": {"Esc", "b"}, "failover": {"Esc", "S", "F"},
        "task": {"Esc", "x"}, "recoveries": {"Esc", "a"}, "host": {"Esc", "k"}}


async def footer_keys(app, pilot):
    """The footer's keys and its palette key, once it is laid out: the footer
    composes its keys again on a screen change or resize, and on a busy
    machine a query can fall between the removal and the new keys (the
    palette key missing, or not yet placed)."""
    for _ in range(100):
        keys = list(app.screen.query(FooterKey))
        palette = [k for k in keys if "-command-palette" in k.classes]
        if palette and all(k.region.width for k in keys):
            return [k for k in keys if "-command-palette" not in k.classes], palette[0]
        await pilot.pause(0.05)
    raise AssertionError(f"the footer was never laid out: {[k.key_display for k in keys]}")


@pytest.mark.parametrize("name", SCREENS)
async def test_footer_at_80_columns(tmp_path, name):
    app, _ = console(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        if SCREENS[name]:
            await SCREENS[name](app, pilot)
        await pilot.pause(0.4)
        footer = app.screen.query_one(ConsoleFooter)
        keys, palette = await footer_keys(app, pilot)
        assert keys[0].key_display == "?"
        for k in keys:  # whole, left of the palette key, none over another
            assert k.region.right <= palette.region.x, (k.key_display, k.region, palette.region)
        for a, b in zip(keys, keys[1:], strict=False):
            assert a.region.right <= b.region.x
        shown = {k.key_display for k in keys}
        assert MUST[name] <= shown, (name, shown)
        if footer.hidden_keys:
            assert keys[0].description == f"Help ({len(footer.hidden_keys)} more)"
        else:
            assert keys[0].description == "Help"
        if name in ("dashboard", "failover", "backup", "host"):  # these do not fit at 80
            assert footer.hidden_keys


async def test_every_key_at_200_columns_and_after_a_resize(tmp_path):
    app, _ = console(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_task("failover:prod")
        await pilot.pause(0.4)
        footer = app.screen.query_one(ConsoleFooter)
        assert footer.hidden_keys == ["Acknowledge", "Auto on/off", "Recovery history"]
        await pilot.resize_terminal(200, 50)
        await pilot.pause(0.4)
        keys, _ = await footer_keys(app, pilot)
        assert footer.hidden_keys == [] and keys[0].description == "Help"
        assert [k.key_display for k in keys] == ["?", "Esc", "S", "F", "d", "a", "o", "h"]
