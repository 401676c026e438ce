"""The recovery history through the API and in the console, on a real
sandbox where a switchover ran: ``GET /clusters/{c}/recoveries`` lists it
with its steps, acknowledging needs the cluster's name typed (409 without,
audited), both routes answer 401 on TCP without the token and change
nothing, and the console attached to the engine (RemoteEngine) shows the
switchover and its steps in the history screen, reached from the failover
screen, and acknowledges it there."""

from __future__ import annotations

import signal

import pytest

from console.api.client import ApiError, connect
from console.api.remote import RemoteEngine
from console.config import load_config
from console.errors import ConfirmationRequired
from console.tui.app import ConsoleApp
from console.tui.screens.recoveries import RecoveriesScreen
from console.tui.widgets.confirm import ConfirmDialog
from tests.integration.test_api import audit_lines, tcp_request
from tests.support.backup_helpers import wait_for
from tests.support.pilot import wait_until
from tests.support.sandboxes import free_port_block
from tests.support.serving import cluster_part

pytestmark = pytest.mark.integration

FAILOVER = '\n[tasks.fo]\nkind = "failover"\ncluster = "sandbox"\nautostart = true\n'


def column(table, key: str) -> list[str]:
    return [str(table.get_cell(r.value, key)) for r in table.rows]


async def test_a_switchover_in_the_api_and_the_console_history(make_sandbox, tmp_path, serve):
    sb = make_sandbox(replicas=2)
    state, path = tmp_path / "state", tmp_path / "dbops.toml"
    path.write_text(cluster_part(sb, state) + FAILOVER)
    port = free_port_block(1)
    cli = serve(path, None, "--listen", f"127.0.0.1:{port}")
    wait_for(lambda: connect(state) is not None or cli.p.poll() is not None, 120, "the API socket")
    assert cli.p.poll() is None, "\n".join(cli.err)
    client = connect(state, actor="test")
    wait_for(lambda: client.task("fo")["phase"] == "watching", 60, "the failover task watching")
    base = "/api/v1/clusters/sandbox/recoveries"
    assert client.get(base) == {"cluster": "sandbox", "recoveries": []}
    with pytest.raises(ApiError) as e:
        client.get("/api/v1/clusters/nope/recoveries")
    assert e.value.status == 404

    # a switchover through the engine; its journal lists every step
    client.command("fo", "switchover", confirm="sandbox")
    wait_for(lambda: [r["outcome"] for r in client.get(base)["recoveries"]] == ["ok"], 90,
             "the switchover in the history")
    (rec,) = client.get(base)["recoveries"]
    names = [s["name"] for s in rec["steps"]]
    assert rec["kind"] == "switchover" and rec["cluster"] == "sandbox" and rec["id"]
    assert {"fence", "promote"} <= set(names) and rec["duration_ms"] > 0
    assert rec["old_primary"].endswith(str(sb.port("node1"))) and rec["acknowledged"] is False
    assert rec["actor"] == "test"

    # TCP without the token: 401 for both routes, nothing acknowledged or audited
    token = (state / "api.token").read_text().strip()
    audit_before = audit_lines(state)
    for given in (None, "wrong"):
        for method, body in (("GET", None), ("POST", {"confirm": "sandbox"})):
            status, out = tcp_request(port, method, base + ("/acknowledge" if method == "POST" else ""),
                                      given, body)
            assert status == 401 and "token" in out["error"], (given, method, out)
    assert audit_lines(state) == audit_before
    assert client.get(base)["recoveries"][0]["acknowledged"] is False
    status, out = tcp_request(port, "GET", base, token)
    assert status == 200 and out["recoveries"][0]["id"] == rec["id"]

    # acknowledging: the cluster's name typed, else 409 (audited as refused)
    with pytest.raises(ConfirmationRequired):
        client.post(base + "/acknowledge", {})
    status, out = tcp_request(port, "POST", base + "/acknowledge", token, {"confirm": "Sandbox"})
    assert status == 409 and out["confirm"] == "sandbox"
    assert client.get(base)["recoveries"][0]["acknowledged"] is False

    # the console, attached: the history from the failover screen, acknowledged there
    cfg = load_config(path)
    engine = RemoteEngine(cfg, connect(state, actor="console:test"))
    app = ConsoleApp(engine)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            assert await wait_until(pilot, lambda: "fo" in engine.running_tasks(), 30)
            app.open_task("fo")
            await pilot.pause(0.3)
            await pilot.press("h")
            assert await wait_until(pilot, lambda: isinstance(app.screen, RecoveriesScreen), 10)
            screen = app.screen
            table, steps = screen.query_one("#rh-list"), screen.query_one("#rh-steps")
            assert await wait_until(pilot, lambda: table.row_count == 1, 10)
            assert column(table, "kind") == ["switchover"] and column(table, "result") == ["ok"]
            assert column(table, "ack") == ["NOT acknowledged"] and column(table, "id") == [rec["id"]]
            assert [str(steps.get_cell_at((i, 2))) for i in range(steps.row_count)] == names
            await pilot.press("a")
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), 5)
            await pilot.press(*"sandbox", "enter")
            assert await wait_until(pilot, lambda: column(table, "ack") == ["console:test"], 15)
    finally:
        engine.shutdown()
    acks = [ln for ln in audit_lines(state) if '"acknowledge"' in ln]
    assert len(acks) == 3 and '"refused"' in acks[0] and '"refused"' in acks[1]
    assert '"console:test"' in acks[2] and '"ok"' in acks[2]
    assert cli.stop(signal.SIGTERM) == 0, "\n".join(cli.err)
