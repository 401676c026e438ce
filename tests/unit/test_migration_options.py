"""Migration options: one default per option, whether the task comes from
the CLI, a config file or code (no server)."""

from __future__ import annotations

from console.config import load_config
from console.kinds.migration import MigrationOptions

TASK = ('[clusters.c.hosts.h1]\nuser = "u"\npassword = "p"\n'
        '[tasks.m]\nkind = "migration"\ncluster = "c"\ndatabase = "d"\ntable = "t"\n'
        'alter = "ADD COLUMN x INT"\n')


def _config_task(tmp_path, extra: str = "") -> MigrationOptions:
    cfg = tmp_path / "c.toml"
    cfg.write_text(TASK + extra)
    return load_config(cfg).task("m").options


def test_a_config_task_without_options_gets_the_dataclass_defaults(tmp_path):
    """postpone_cut_over was False in the dataclass and True in the config
    parser: a task built in code cut over at once where the same task from
    a config file waited for the operator.  Every option's default is now
    the dataclass's."""
    parsed = _config_task(tmp_path)
    assert parsed == MigrationOptions(database="d", table="t", alter="ADD COLUMN x INT")


def test_postpone_cut_over_defaults_to_waiting_for_the_operator(tmp_path):
    # documented (docs/migration.md, "Config task"): a config task waits
    # for the cut-over command unless told otherwise
    assert MigrationOptions(database="d", table="t", alter="ADD COLUMN x INT").postpone_cut_over
    assert _config_task(tmp_path).postpone_cut_over
    assert not _config_task(tmp_path, "postpone_cut_over = false\n").postpone_cut_over


def test_task_ids_and_directories_of_different_tables_differ(tmp_path):
    """``my table`` and ``my_table`` shared STATE_DIR/tasks/migrate-d.my_table
    (the directory name replaced the space), and with it the checkpoint a
    --resume reads."""
    from console.engine.migration.taskid import migration_task_id
    from console.engine.state import StateDir, task_dir_name

    assert migration_task_id("shop", "orders") == "migrate-shop.orders"   # plain names: as before
    pairs = [("d", "my table"), ("d", "my_table"), ("d", "my$table"), ("a.b", "c"), ("a", "b.c"),
             ("d", "tä"), ("d", "t:1"), ("d", "t_1")]
    ids = [migration_task_id(db, t) for db, t in pairs]
    assert len(set(ids)) == len(ids), ids
    state = StateDir(tmp_path)
    dirs = [state.task_path(i) for i in ids]
    assert len(set(dirs)) == len(dirs) and all(d.parent == tmp_path / "tasks" for d in dirs), dirs
    assert all(task_dir_name(i) == i for i in ids)          # already safe as directory names
    # any task id (a config task's name) gets a directory of its own
    names = ["a b", "a_b", "a:b", "a/b", "..", ".", "", "é"]
    got = [task_dir_name(n) for n in names]
    assert len(set(got)) == len(got) and all(g and "/" not in g and g not in (".", "..") for g in got)
    assert not (tmp_path / "tasks").exists()                 # task_path creates nothing
