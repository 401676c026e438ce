"""The relay screen says how old the upstream's position is and marks it
when the engine shows the relayed position because the poll was older
(fixed data: no server)."""

from dataclasses import replace

from tests.tui.screens_fixed import console


async def test_the_upstream_panel_names_the_poll_s_age_and_never_reads_behind(tmp_path):
    app, engine = console(tmp_path)
    task = engine.task("relay-a")
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_task("relay-a")
        await pilot.pause(0.3)
        up = str(app.screen.query_one("#upstream").render())
        assert "position  mysql-bin.000003:4711" in up and "polled    0.4 s ago" in up
        task.fixed_detail = replace(task.fixed_detail, upstream_pos=4600, upstream_gtid="0-1-1233",
                                    upstream_age=2.3, upstream_at_least=True, bytes_behind=0,
                                    caught_up=True)
        app.screen.refresh_view()
        await pilot.pause(0.2)
        up = str(app.screen.query_one("#upstream").render())
        rel = str(app.screen.query_one("#relayed").render())
        assert "position  ≥ mysql-bin.000003:4600" in up and "position  mysql-bin.000003:4600" in rel
        assert "polled    2.3 s ago (older than relayed)" in up
        assert "caught up" in str(app.screen.query_one("#gauge").render())
        task.fixed_detail = replace(task.fixed_detail, upstream_age=None, upstream_at_least=False)
        app.screen.refresh_view()
        await pilot.pause(0.2)
        assert "polled    not yet" in str(app.screen.query_one("#upstream").render())
