"""Migration options: one default per option, whether the task comes from
the CLI, a config file or code (no server)."""

from __future__ import annotations

from console.config import load_config
from console.engine.migration.options import MigrationOptions

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
