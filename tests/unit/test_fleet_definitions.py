"""A shared fleet's task definitions (engine/fleet.py, pure logic over a
fake coordinator): each engine publishes its config file's [tasks.NAME]
tables whole; another engine adopts those its file lacks when it knows their
cluster, says once why it leaves one out, keeps its own over the fleet's,
and forgets in etcd what its file no longer declares."""

from pathlib import Path

import pytest

from console.config import ConfigError, parse_config, parse_task_table, task_table
from console.engine.fleet import Fleet

CLUSTER = {"hosts": {"db1": {"host": "127.0.0.1", "port": 3306, "user": "u", "password": "p"}}}
TASKS = {
    "r1": {"kind": "relay", "cluster": "c", "relay_dir": "/var/lib/dbops/r1", "server_id": 501,
           "autostart": True},
    "b1": {"kind": "backup", "cluster": "c", "storage": "s3://bucket/prefix", "s3_endpoint": "http://s3:9000",
           "server_id": 502, "keep_snapshots": 5},
    "m1": {"kind": "migration", "cluster": "c", "database": "shop", "table": "orders",
           "alter": "ADD COLUMN x INT", "throttle_control_replicas": ["127.0.0.1:3307"], "copy_threads": 2},
    "f1": {"kind": "failover", "cluster": "c", "autostart": True},
}


def config(tasks=TASKS, clusters=("c",)):
    return parse_config({"state_dir": "/tmp/unused", "clusters": {c: CLUSTER for c in clusters},
                         "tasks": dict(tasks)}, Path("own.toml"))


@pytest.mark.parametrize("name", TASKS)
def test_a_task_table_reads_back_as_the_same_task(name):
    cfg = config()
    tc = cfg.tasks[name]
    table = task_table(tc)
    assert table["kind"] == tc.kind and "None" not in repr(table)
    assert parse_task_table(table, name, cfg.clusters, "the fleet's definition") == tc


def test_a_bad_definition_names_its_origin_and_key():
    cfg = config()
    table = dict(task_table(cfg.tasks["r1"]), server_id="many")
    with pytest.raises(ConfigError, match="the fleet's definition: tasks.r1.server_id"):
        parse_task_table(table, "r1", cfg.clusters, "the fleet's definition")


class Coord:
    """What Fleet asks of a coordinator, for its definitions only."""
    shared = True
    engine_id = "e2"
    description = "fake"

    def __init__(self):
        self.defs: dict[str, dict] = {}

    def define_tasks(self, defs, forget=()):
        self.defs.update(defs)
        for n in forget:
            self.defs.pop(n, None)

    def definitions(self):
        return dict(self.defs)


class Engine:
    def __init__(self, cfg):
        self.config = cfg
        self.coordinator = Coord()
        self.removed: list[str] = []
        self.running: set[str] = set()

    def set_config(self, cfg):
        self.config = cfg

    def tasks(self):
        return [type("T", (), {"task_id": n})() for n in sorted(self.running)]

    def remove_task(self, name, actor, wait):
        self.removed.append(name)
        self.running.discard(name)
        return True


def fleet_of(cfg):
    said: list[str] = []
    e = Engine(cfg)
    return Fleet(e, said.append), e, said


def test_an_engine_adopts_the_fleets_tasks_its_file_lacks():
    other = config()                                    # engine 1's file: every task
    fleet, engine, said = fleet_of(config(tasks={}))    # engine 2's file: the cluster only
    engine.coordinator.defs = {n: task_table(tc) for n, tc in other.tasks.items()}
    fleet._adopt()
    assert engine.config.tasks == other.tasks
    assert sorted(said) == sorted(f"serve: task {n}: declared by another engine of the fleet, adopted"
                                  for n in TASKS)
    said.clear()
    fleet._adopt()                                       # nothing new: nothing said
    assert not said
    # its own definitions are only its file's: adopted ones are not published back as its own
    fleet.define()
    assert fleet.own == set()


def test_an_engines_own_definition_wins_over_the_fleets():
    fleet, engine, _ = fleet_of(config(tasks={"r1": TASKS["r1"]}))
    changed = dict(TASKS["r1"], server_id=999)
    engine.coordinator.defs = {"r1": changed}
    fleet._adopt()
    assert engine.config.tasks["r1"].options.server_id == 501


def test_a_definition_of_an_unknown_cluster_is_left_out_and_said_once():
    fleet, engine, said = fleet_of(config(tasks={}))
    engine.coordinator.defs = {"r9": dict(TASKS["r1"], cluster="elsewhere")}
    fleet._adopt()
    fleet._adopt()
    assert "r9" not in engine.config.tasks
    assert len(said) == 1 and said[0].startswith("serve: fleet task r9 left out (this engine cannot run it): ")
    assert "no cluster named 'elsewhere'" in said[0]


def test_a_task_the_fleet_no_longer_declares_is_taken_out():
    fleet, engine, said = fleet_of(config(tasks={}))
    engine.coordinator.defs = {"r1": TASKS["r1"]}
    fleet._adopt()
    engine.running.add("r1")
    engine.coordinator.defs = {}
    fleet._adopt()
    fleet._drop()
    assert "r1" not in engine.config.tasks and engine.removed == ["r1"]
    assert said[-1] == "serve: task r1: no longer declared in the fleet"


def test_a_reload_keeps_the_adopted_tasks_and_forgets_what_the_file_dropped():
    fleet, engine, _ = fleet_of(config(tasks={"r1": TASKS["r1"]}))
    fleet.define()
    engine.coordinator.defs["f1"] = TASKS["f1"]          # another engine's
    fleet._adopt()
    assert set(engine.config.tasks) == {"r1", "f1"}
    new = fleet.merged(config(tasks={"m1": TASKS["m1"]}))   # the file: r1 out, m1 in
    assert set(new.tasks) == {"m1", "f1"}                   # r1 not adopted back from etcd
    fleet._adopt()                                          # (a tick while the reload applies)
    assert set(engine.config.tasks) == {"r1", "f1"}
    engine.set_config(new)
    fleet.define()
    assert set(engine.coordinator.defs) == {"m1", "f1"} and fleet.own == {"m1"}
    fleet._adopt()
    assert set(engine.config.tasks) == {"m1", "f1"}


def test_a_refused_reload_changes_nothing():
    fleet, engine, _ = fleet_of(config(tasks={"r1": TASKS["r1"]}))
    fleet.define()
    fleet.merged(config(tasks={}))
    fleet.cancel()
    fleet.define()
    assert fleet.own == {"r1"} and set(engine.coordinator.defs) == {"r1"}

