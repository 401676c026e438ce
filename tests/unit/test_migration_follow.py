"""Failover survival of a migration (``follow.py``): which host is the new
primary, what the changelog records, and the clear failure without a cluster."""

from __future__ import annotations

import dataclasses
import json
import types

import pytest

from console.config import Secret
from console.engine.migration import follow
from console.engine.migration.checkpoint import enc
from console.errors import UserError
from console.mysql.connection import Endpoint


def _ep(port: int) -> Endpoint:
    return Endpoint("127.0.0.1", port, "u", Secret("p"), f"n{port}")


def test_the_new_primary_is_the_one_writable_host_that_replicates_from_nobody(monkeypatch):
    states = {1: "unreachable (refused)", 2: "", 3: "it replicates from 127.0.0.1:2"}
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: states[ep.port])
    found, why = follow.find_primary((_ep(1), _ep(2), _ep(3)))
    assert found is not None and found.port == 2
    assert set(why) == {"n1 (127.0.0.1:1)", "n3 (127.0.0.1:3)"}


def test_no_primary_or_two_writable_hosts_is_no_answer_yet(monkeypatch):
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: "it is read-only")
    assert follow.find_primary((_ep(1), _ep(2)))[0] is None
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: "")
    found, why = follow.find_primary((_ep(1), _ep(2)))
    assert found is None and all(v == "one of several writable hosts" for v in why.values())


def test_the_changelog_records_are_read_back_as_the_apply_position_and_the_copy_prefix(monkeypatch):
    rows = [{"hint": follow.APPLIED_POS, "value": "0-1-638"},
            {"hint": follow.COPY_LAST, "value": json.dumps(enc((45011, "x")))}]
    monkeypatch.setattr(follow, "query", lambda conn, sql, args=None: rows)
    ins = types.SimpleNamespace(database="d", changelog="t_ghc")
    assert follow.recorded(None, ins) == ("0-1-638", (45011, "x"), True)
    monkeypatch.setattr(follow, "query", lambda conn, sql, args=None: [])
    assert follow.recorded(None, ins) == (None, None, False)


class _Task(follow.FollowPrimary):
    """Just what ``_follow_primary`` uses."""

    def __init__(self, cluster=()):
        self.ep, self.cluster = _ep(1), tuple(cluster)
        self.ins = types.SimpleNamespace(changelog="t_ghc")
        self.copier = types.SimpleNamespace()
        self.applier = None
        self.opts = types.SimpleNamespace(failover_wait_seconds=1, database="d")
        self.primary_moves = 0
        self.logged: list[str] = []
        self.log = self.logged.append

    def set_phase(self, p): self.phase = p
    def set_waiting(self, w): pass
    def sleep(self, s): pass
    def _stop_workers(self): pass
    def _check_panic(self): pass


def test_without_a_cluster_a_demoted_primary_fails_at_once_saying_what_to_do(monkeypatch):
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: "it is read-only")
    t = _Task()
    with pytest.raises(UserError) as e:
        t._follow_primary("n1 (127.0.0.1:1) it is read-only")
    msg = str(e.value)
    assert "cannot tell the new primary" in msg and "--resume --execute --host" in msg
    assert "--config F --cluster C" in msg and t.phase == "finding-primary"


def test_a_cluster_without_any_primary_gives_up_after_the_wait(monkeypatch):
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: "unreachable (refused)")
    clock = iter(range(0, 1000, 1))
    monkeypatch.setattr(follow.time, "monotonic", lambda: next(clock))
    t = _Task(cluster=(_ep(1), _ep(2)))
    with pytest.raises(UserError, match=r"no new primary among the cluster's hosts within 1s"):
        t._follow_primary("n1 (127.0.0.1:1) unreachable (refused)")


def test_lost_primary_judges_an_error_by_the_server_state(monkeypatch):
    import pymysql

    t = _Task()
    t._guarding = True
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: "")
    assert t._lost_primary(ValueError("checksum differs")) == ""
    assert "lost the connection" in t._lost_primary(pymysql.err.OperationalError(2013, "Lost connection"))
    assert t._lost_primary(follow.PrimaryLost("x is read-only now")) == "x is read-only now"
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: "it is read-only")
    assert t._lost_primary(ValueError("any")) == "n1 (127.0.0.1:1) it is read-only"
    t._guarding = False         # (on a replica, or a primary read-only from the start)
    assert t._lost_primary(follow.PrimaryLost("x")) == ""


def test_a_configured_migration_task_knows_its_cluster_hosts(tmp_path):
    """A config task follows a failover among its cluster's hosts."""
    from console.config import parse_config
    from console.engine.migration import make_migration_task
    from console.engine.state import StateDir

    cfg = parse_config({"clusters": {"c": {"hosts": {
        "db1": {"host": "10.0.0.1", "user": "u", "password": "p"},
        "db2": {"host": "10.0.0.2", "user": "u", "password": "p"}}}},
        "tasks": {"m": {"kind": "migration", "cluster": "c", "database": "d", "table": "t",
                        "alter": "ADD x INT"}}})
    engine = types.SimpleNamespace(config=cfg, state=StateDir(tmp_path), event=lambda *a: None,
                                   coordinator=types.SimpleNamespace(shared=False))
    task = make_migration_task(engine, cfg.tasks["m"])
    assert task.ep.host == "10.0.0.1"
    assert [e.host for e in task.cluster] == ["10.0.0.1", "10.0.0.2"]


def test_migrate_with_a_cluster_starts_on_its_primary_or_the_named_host(monkeypatch):
    from console.commands import migrate

    cluster = (_ep(1), _ep(2))
    none = dict(password=None, password_file=None, password_env=None, user="me", cluster="c")
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: "" if ep.port == 2 else "it is read-only")
    args = types.SimpleNamespace(host=None, port=None, **none)
    assert migrate._start_endpoint(args, cluster) is cluster[1]
    args = types.SimpleNamespace(host="127.0.0.1", port=1, **none)
    assert migrate._start_endpoint(args, cluster) is cluster[0]       # (the config's account)
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: "it is read-only")
    with pytest.raises(UserError, match="no single writable primary"):
        migrate._start_endpoint(types.SimpleNamespace(host=None, port=None, **none), cluster)


def test_a_rename_made_before_the_primary_was_lost_leaves_only_the_cleanup(monkeypatch):
    """The cut-over's RENAME committed, its acknowledgement went with the
    primary: on the new one the ghost is gone and the old table is there."""
    monkeypatch.setattr(follow, "probe", lambda ep, replicating=True: "" if ep.port == 2 else "unreachable")
    monkeypatch.setattr(follow, "table_exists", lambda conn, db, t: t == "t_del")
    monkeypatch.setattr(follow, "check_tables", lambda *a, **k: pytest.fail("not a resume"))
    t = _Task(cluster=(_ep(1), _ep(2)))
    ins = dataclasses.make_dataclass("Ins", ["database", "ghost", "old", "changelog", "dialect", "replicas"])
    t.ins = ins("d", "t_gho", "t_del", "t_ghc", types.SimpleNamespace(replica_hosts=lambda conn: []), ())
    t.copier = types.SimpleNamespace(min=(1,), max=(9,), rows_copied=9)
    t._swapped, t.cutover_attempts = False, 1
    t.cutover_at = {"file": "mysql-bin.000001", "pos": 4, "gtid": "0-1-9"}
    t._connect = lambda **kw: object()
    t._take_table_lock = lambda: object()
    conn, lock, state = t._follow_primary("n1 unreachable")
    assert t._swapped and t.ep.port == 2
    assert t.cutover_at == {"file": None, "pos": None, "gtid": "0-1-9"}    # (the GTID holds there)
    assert any("only the cleanup is left" in m for m in t.logged)


def test_a_migration_handed_to_the_engine_gets_the_named_clusters_hosts_from_its_config():
    from console.api.migrations import _cluster
    from console.config import parse_config

    cfg = parse_config({"clusters": {"c": {"hosts": {"db1": {"host": "10.0.0.1", "user": "u", "password": "p"},
                                                     "db2": {"host": "10.0.0.2", "user": "u", "password": "p"}}}}})
    engine = types.SimpleNamespace(config=cfg)
    assert _cluster(engine, None) == ()
    assert [e.host for e in _cluster(engine, "c")] == ["10.0.0.1", "10.0.0.2"]
    assert "no cluster named 'x'" in _cluster(engine, "x")
    assert "must be the name" in _cluster(engine, 5)


def test_the_watch_probe_calls_the_primary_lost_after_two_failures_or_at_once_when_read_only(monkeypatch):
    from console.mysql.connection import DBError

    def refused(ep, **kw):
        raise DBError(f"{ep.label}: error 2003: Can't connect")

    t = _Task()
    t._guarding, t._primary_lost, t._probe_failures = True, "", 0
    monkeypatch.setattr(follow, "connect", refused)
    held: list = []
    t._probe_primary(held)
    assert t._primary_lost == ""            # one failure may be a blip
    t._probe_primary(held)
    assert t._primary_lost == "n1 (127.0.0.1:1) unreachable (error 2003: Can't connect)"
    t._primary_lost, t._probe_failures = "", 0
    monkeypatch.setattr(follow, "connect", lambda ep, **kw: "conn")
    monkeypatch.setattr(follow, "primary_problem", lambda conn, replicating=True: "it is read-only")
    t._probe_primary(held)
    assert t._primary_lost == "n1 (127.0.0.1:1) it is read-only" and held == ["conn"]
