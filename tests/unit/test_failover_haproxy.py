"""Traffic follows the primary: the HAProxy runtime API commands, replies and
``show servers state`` parsing (pure), the [clusters.NAME.haproxy] table,
and the hook variables of a recovery (recovery id, lost replicas)."""

import dataclasses

import pytest
import tomllib

from console.config import ConfigError, config_schema, parse_config
from console.engine.failover.context import ClusterOps, RecoveryOptions
from console.engine.failover.haproxy import (
    HaproxyError,
    Runtime,
    check_reply,
    confirm,
    parse_servers_state,
    plan_switch,
)
from console.engine.failover.journal import Journal
from console.engine.failover.recovery import Recovery, new_recovery_id
from console.kinds.haproxy import HaproxyOptions

# HAProxy 2.6's reply, as read from Debian's haproxy
STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 writer 1 node1 127.0.0.1 2 0 1 1 1 1 0 2 0 0 0 0 - 23501 - 0 0 - - 0
3 writer 2 node2 127.0.0.1 0 5 1 1 1 1 0 0 8 0 0 0 - 23502 - 0 0 - - 0
3 writer 3 node3 127.0.0.1 0 5 1 1 1 1 0 0 8 0 0 0 - 23503 - 0 0 - - 0

"""
HOSTS = [("node1", "127.0.0.1:23501"), ("node2", "127.0.0.1:23502"), ("node3", "127.0.0.1:23503")]


def opts(**kw):
    return HaproxyOptions(admin_socket="/run/h.sock", **kw)


def test_show_servers_state_is_parsed_by_its_header():
    s = parse_servers_state(STATE)
    assert [(x.name, x.address, x.maint) for x in s] == [
        ("node1", "127.0.0.1:23501", False), ("node2", "127.0.0.1:23502", True),
        ("node3", "127.0.0.1:23503", True)]
    assert s[0].describe() == "node1 127.0.0.1:23501 ready/running"
    # CMAINT alone (0x04: "disabled" in the config, then set ready) is not maintenance
    ready = parse_servers_state(STATE.replace("0 5 1 1 1 1 0 0 8", "2 4 1 1 1 1 0 0 8", 1))
    assert not ready[1].maint and ready[1].describe().endswith("ready/running")
    with pytest.raises(HaproxyError, match="Can't find backend"):
        parse_servers_state("Can't find backend.\n\n")
    with pytest.raises(HaproxyError, match="empty reply"):
        parse_servers_state("\n")


def test_replies_that_are_errors_raise_with_haproxys_line():
    assert check_reply("set server writer/node2 state ready", "\n") == ""
    assert check_reply("set server writer/s addr 127.0.0.1 port 2",
                       "no need to change the addr, port changed from '1' to '2' by 'stats socket command'\n\n"
                       ).startswith("no need to change the addr")
    for reply in ("No such server.\n\n", "No such backend.\n\n", "Permission denied\n\n",
                  "Unknown command, but maybe one of the following ones is a better match:\n  show fd\n"):
        with pytest.raises(HaproxyError, match=reply.splitlines()[0].rstrip(".")):
            check_reply("set server writer/x state maint", reply)


def test_servers_mode_readies_the_new_primary_first_then_maint_for_the_others():
    p = plan_switch(opts(), HOSTS, "127.0.0.1:23501", "127.0.0.1:23502", ["node1", "node2", "node3"])
    assert p.switch == ("set server writer/node2 state ready", "set server writer/node1 state maint",
                        "set server writer/node3 state maint")
    assert p.shutdown == ("shutdown sessions server writer/node1",)
    assert (p.new_server, p.old_server) == ("node2", "node1")
    # a naming scheme; a host the backend lacks is left alone; no sessions closed when asked not to
    p = plan_switch(opts(server="db_{port}", backend="rw", shutdown_sessions=False), HOSTS,
                    "127.0.0.1:23501", "127.0.0.1:23503", ["db_23501", "db_23503"])
    assert p.switch == ("set server rw/db_23503 state ready", "set server rw/db_23501 state maint")
    assert p.shutdown == () and p.notes == ("db_23502: no such server in rw (left alone)",)
    # the old primary without a server of its own: nothing to put in maint or shut down
    p = plan_switch(opts(), HOSTS, "127.0.0.1:23501", "127.0.0.1:23502", ["node2", "node3"])
    assert (p.old_server, p.shutdown) == ("", ()) and p.notes == ("node1: no such server in writer (left alone)",)
    with pytest.raises(HaproxyError, match="no server node2 for the new primary 127.0.0.1:23502"):
        plan_switch(opts(), HOSTS, "127.0.0.1:23501", "127.0.0.1:23502", ["node1", "node3"])


def test_addr_mode_sets_the_one_servers_address():
    o = opts(mode="addr", server="primary")
    p = plan_switch(o, HOSTS, "127.0.0.1:23501", "127.0.0.1:23502", ["primary"])
    assert p.switch == ("set server writer/primary addr 127.0.0.1 port 23502",
                        "set server writer/primary state ready")
    assert p.shutdown == ("shutdown sessions server writer/primary",)
    assert p.old_server == ""
    with pytest.raises(HaproxyError, match="no server primary"):
        plan_switch(o, HOSTS, "127.0.0.1:23501", "127.0.0.1:23502", ["node1"])
    after = STATE.replace("node1", "primary").replace("23501", "23502")
    assert confirm(o, p, parse_servers_state(after), "127.0.0.1:23502").startswith("primary 127.0.0.1:23502")
    with pytest.raises(HaproxyError, match="points at 127.0.0.1:23501"):
        confirm(o, p, parse_servers_state(STATE.replace("node1", "primary")), "127.0.0.1:23502")


def test_confirm_reads_the_new_primary_in_service_and_the_others_in_maint():
    p = plan_switch(opts(), HOSTS, "127.0.0.1:23501", "127.0.0.1:23502", ["node1", "node2", "node3"])
    switched = STATE.replace("node1 127.0.0.1 2 0", "node1 127.0.0.1 0 1").replace(
        "node2 127.0.0.1 0 5", "node2 127.0.0.1 2 4")
    assert "node1 127.0.0.1:23501 maint/stopped" in confirm(opts(), p, parse_servers_state(switched),
                                                            "127.0.0.1:23502")
    with pytest.raises(HaproxyError, match="node2 is still in maintenance"):
        confirm(opts(), p, parse_servers_state(STATE), "127.0.0.1:23502")
    half = STATE.replace("node2 127.0.0.1 0 5", "node2 127.0.0.1 2 4")
    with pytest.raises(HaproxyError, match="still in service: node1"):
        confirm(opts(), p, parse_servers_state(half), "127.0.0.1:23502")


def test_an_unreachable_socket_is_one_line(tmp_path):
    with pytest.raises(HaproxyError, match=f"haproxy admin socket {tmp_path}/none.sock: No such file"):
        Runtime(str(tmp_path / "none.sock")).command("show servers state writer")


CLUSTER = """
[clusters.main.hosts.db1]
host = "localhost"
user = "ops"
password = "x"
[clusters.main.hosts.db2]
host = "10.0.0.2"
user = "ops"
password = "x"
"""


def test_the_haproxy_table(tmp_path):
    cfg = parse_config(tomllib.loads(CLUSTER + '[clusters.main.haproxy]\nadmin_socket = "h.sock"\n'),
                       tmp_path / "c.toml")
    h = cfg.clusters["main"].haproxy
    assert h == HaproxyOptions(admin_socket=str(tmp_path / "h.sock"))
    assert parse_config(tomllib.loads(CLUSTER)).clusters["main"].haproxy is None
    bad = {
        'backend = "w"': "clusters.main.haproxy.admin_socket: missing (required)",
        'admin_socket = "s"\nmode = "vip"': "clusters.main.haproxy.mode: must be one of servers, addr",
        'admin_socket = "s"\nmode = "addr"': "clusters.main.haproxy.server: mode addr sets the address "
                                             "of one server: name it",
        'admin_socket = "s"\nserver = "{nme}"': "clusters.main.haproxy.server: may use only {name}",
        'admin_socket = "s"\nserver = "a/b"': "clusters.main.haproxy.server: must be a server name",
        'admin_socket = "s"\nbakend = "w"': "clusters.main.haproxy.bakend: unknown key (did you mean 'backend'?)",
        'admin_socket = "s"\ntimeout = 0': "clusters.main.haproxy.timeout: must be between 0.1 and 60",
    }
    for text, msg in bad.items():
        with pytest.raises(ConfigError) as e:
            parse_config(tomllib.loads(CLUSTER + "[clusters.main.haproxy]\n" + text),
                         tmp_path / "c.toml")
        assert f"{tmp_path / 'c.toml'}: {msg}" in str(e.value)
    props = config_schema()["properties"]["clusters"]["additionalProperties"]["properties"]["haproxy"]
    assert props["required"] == ["admin_socket"] and props["additionalProperties"] is False
    assert props["properties"]["mode"]["enum"] == ["servers", "addr"]


def test_hook_variables_name_the_recovery_and_the_lost_replicas(tmp_path):
    cluster = parse_config(tomllib.loads(CLUSTER)).clusters["main"]
    r = Recovery(ClusterOps(cluster, None), RecoveryOptions(actor="auto"))
    r.old_primary, r.new_primary = "127.0.0.1:3306", "10.0.0.2:3306"
    env = r._hook_env("pre_failover")
    assert env["DBOPS_RECOVERY_ID"] == r.recovery_id == r.journal.meta["recovery_id"]
    assert env["DBOPS_OLD_PRIMARY_NAME"] == "db1" and env["DBOPS_NEW_PRIMARY_HOST"] == "10.0.0.2"
    assert env["DBOPS_NEW_PRIMARY_PORT"] == "3306" and env["DBOPS_ACTOR"] == "auto"
    out = tmp_path / "env.txt"
    hook = tmp_path / "post.sh"
    hook.write_text(f"#!/bin/sh\necho \"$DBOPS_RECOVERY_ID|$DBOPS_LOST_REPLICAS|$DBOPS_REPOINTED|"
                    f"$DBOPS_HAPROXY|$DBOPS_OUTCOME\" > {out}\n")
    hook.chmod(0o755)
    r.cluster = dataclasses.replace(cluster, hooks={"post_failover": (str(hook),)})
    r.repointed = ["10.0.0.3:3306"]
    r.not_repointed = ["10.0.0.4:3306: holds 0-1-5 that the new primary lacks: fix by hand",
                       "10.0.0.5:3306: unreachable: timed out"]
    r.traffic = "ok: writer -> db2"
    r.journal = Journal(None, "failover", "main")
    r._post_hooks("ok", "")
    assert out.read_text().strip() == (f"{r.recovery_id}|10.0.0.4:3306,10.0.0.5:3306|10.0.0.3:3306|"
                                       "ok: writer -> db2|ok")
    a, b = new_recovery_id(), new_recovery_id()
    assert a != b and len(a) == len("20261204T033323Z-a1b2c3")


def test_the_docs_table_of_the_haproxy_options_is_the_declaration():
    import re
    from pathlib import Path

    from console.options import markdown_table

    text = (Path(__file__).resolve().parents[2] / "docs" / "failover.md").read_text()
    m = re.search(r"<!-- haproxy-options:begin -->\n(.*?)\n<!-- haproxy-options:end -->", text, re.S)
    assert m and m.group(1) == markdown_table(HaproxyOptions)
    # every variable a hook gets is documented
    cluster = parse_config(tomllib.loads(CLUSTER)).clusters["main"]
    r = Recovery(ClusterOps(cluster, None), RecoveryOptions())
    hooks = text[text.index("## Hooks"):]
    missing = [v for v in r._post_env("ok", "") if f"`{v}`" not in hooks]
    assert missing == []


def test_a_dry_run_without_haproxy_plans_from_the_naming_scheme(tmp_path):
    from console.engine.failover.haproxy import TrafficSwitch

    cluster = parse_config(tomllib.loads(CLUSTER)).clusters["main"]
    j = Journal(None, "switchover", "main")
    o = HaproxyOptions(admin_socket=str(tmp_path / "none.sock"))
    TrafficSwitch(o, cluster, j).plan("127.0.0.1:3306", "10.0.0.2:3306")
    switch, conf = j.snapshot()
    assert (switch.name, switch.outcome, switch.target) == ("haproxy switch", "planned", f"haproxy {o.admin_socket}")
    assert switch.sql == ("set server writer/db2 state ready", "set server writer/db1 state maint",
                          "shutdown sessions server writer/db1")
    assert "not read from haproxy" in switch.detail and "names from haproxy.server" in switch.detail
    assert conf.sql == ("show servers state writer",) and conf.detail == "db2 in service, db1 in maint"
