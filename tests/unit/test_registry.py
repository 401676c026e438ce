"""The registry of task kinds: one declaration per option, everything else
generated from it (config parser, CLI flags, live settings, docs, schema)."""

import argparse
import json
import re
from pathlib import Path

import pytest

from console.commands.config import option_tables
from console.config import ConfigError, check_config, config_schema, parse_config
from console.errors import UserError
from console.kinds.migration import MigrationOptions
from console.kinds.registry import all_kinds, get
from console.options import add_arguments, live_help, options_of, parse_live, values

ROOT = Path(__file__).resolve().parents[2]


def test_every_kind_declares_every_option_once_with_a_doc_line():
    for k in all_kinds():
        names = [o.name for o in options_of(k.options)]
        assert len(names) == len(set(names))
        for o in options_of(k.options):
            assert o.spec.doc, f"{k.name}.{o.name}"
            if o.spec.minimum is not None and o.spec.maximum is not None:
                assert o.spec.minimum <= o.spec.maximum
            if not o.required and o.default is not None:
                assert o.spec.check is None or o.spec.check(o.default) is None, (k.name, o.name)


def test_readme_option_tables_are_the_generated_ones():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- options:begin -->\n(.*)\n<!-- options:end -->", text, re.S)
    assert m, "README.md lacks the generated option tables"
    assert m.group(1) == option_tables(), "run: dbops-console config schema --markdown"


def test_config_defaults_are_the_declared_defaults():
    """A task with only its required keys gets exactly the dataclass defaults
    (postpone_cut_over was False in the dataclass and True in the parser)."""
    data = {"clusters": {"c": {"hosts": {"db1": {"user": "u", "password": "p"}}}},
            "tasks": {"m": {"kind": "migration", "database": "d", "table": "t", "alter": "ADD x INT"}}}
    cfg = parse_config(data)
    assert cfg.tasks["m"].options == MigrationOptions(database="d", table="t", alter="ADD x INT")


def test_config_check_reports_every_problem(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[clusters.c.hosts.db1]\nuser = "u"\npassword = "p"\nprot = 1\n'
                 '[tasks.m]\nkind = "migration"\ndatabase = "d"\ntable = "t"\nalter = "ADD x INT"\n'
                 'chunk_size = 5000000\nnice_ratio = -1\nmax_load = "Threads_running"\n'
                 '[tasks.r]\nkind = "relay"\nrelay_dir = "r"\nserver_id = 0\nflush_intervall = 1\n')
    cfg, errors = check_config(p)
    keys = sorted(e.key for e in errors)
    assert keys == ["clusters.c.hosts.db1.prot", "tasks.m.chunk_size", "tasks.m.max_load",
                    "tasks.m.nice_ratio", "tasks.r.flush_intervall", "tasks.r.server_id"]
    assert all(str(p) in str(e) for e in errors)
    chunk = next(e for e in errors if e.key == "tasks.m.chunk_size")
    assert "between 10 and 1000000, got 5000000" in chunk.reason
    # the first one is what load_config raises
    with pytest.raises(ConfigError):
        parse_config({"tasks": {"m": {"kind": "migration"}}})


def test_config_check_command(tmp_path, capsys):
    from console.cli import main

    good = tmp_path / "good.toml"
    good.write_text('[clusters.c.hosts.db1]\nuser = "u"\npassword = "p"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[clusters.c.hosts.db1]\nuser = "u"\npassword = "p"\nport = 70000\n'
                   '[tasks.x]\nkind = "relay"\nrelay_dir = "r"\nheartbeat = 0\n')
    assert main(["config", "check", str(good)]) == 0
    assert "OK: 1 cluster(s) (1 hosts), 0 task(s)" in capsys.readouterr().out
    assert main(["config", "check", str(good), str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "config error" in line] == [
        f"config error: {bad}: clusters.c.hosts.db1.port: must be between 1 and 65535, got 70000",
        f"config error: {bad}: tasks.x.heartbeat: must be between 0.1 and 3600, got 0.0"]
    assert not (tmp_path / "r").exists()


def test_config_schema_command_is_valid_json_with_every_kind(capsys):
    from console.cli import main

    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    variants = schema["properties"]["tasks"]["additionalProperties"]["oneOf"]
    assert sorted(v["properties"]["kind"]["const"] for v in variants) == \
        ["backup", "failover", "migration", "relay"]
    mig = next(v for v in variants if v["properties"]["kind"]["const"] == "migration")
    assert mig["properties"]["chunk_size"] == {
        "description": "rows per copy chunk (rows)", "type": "integer", "minimum": 10,
        "maximum": 1_000_000, "default": 2000, "x-live": True}
    assert mig["required"] == ["kind", "database", "table", "alter"]
    assert schema == config_schema()


def test_cli_flags_come_from_the_declaration():
    p = argparse.ArgumentParser()
    add_arguments(p, MigrationOptions, exclude=("database", "table", "alter"))
    args = p.parse_args(["--chunk-size", "500", "--no-verify-checksum", "--max-load",
                         "Threads_running=5", "--throttle-control-replicas", "h1:1, h2:2"])
    assert values(args, MigrationOptions) == {
        "chunk_size": 500, "verify_checksum": False, "max_load": "Threads_running=5",
        "throttle_control_replicas": ("h1:1", "h2:2")}
    o = MigrationOptions(database="d", table="t", alter="x", chunk_size=5)
    with pytest.raises(UserError, match="--chunk-size must be between 10 and 1000000, got 5"):
        o.validate()


def test_live_settings_share_the_bounds():
    assert parse_live(MigrationOptions, "chunk-size", "500") == ("chunk_size", 500)
    with pytest.raises(UserError, match="chunk-size must be between 10 and 1000000, got 5"):
        parse_live(MigrationOptions, "chunk-size", "5")
    with pytest.raises(UserError, match="chunk-size must be an integer"):
        parse_live(MigrationOptions, "chunk-size", "many")
    with pytest.raises(UserError, match="unknown setting 'copy-threads'"):
        parse_live(MigrationOptions, "copy-threads", "2")
    assert "chunk-size=N " in live_help(MigrationOptions)
    assert "(10..1000000)" in live_help(MigrationOptions)


def test_kinds_resolve_their_factory_and_screen_lazily():
    for k in all_kinds():
        module, _, attr = k.factory.partition(":")
        assert callable(k.make_task.__func__)
        assert module.startswith("console.engine.")
        assert k.screen and k.screen.startswith("console.tui.screens.")
    assert get("relay").screen_class().__name__ == "RelayScreen"
    with pytest.raises(UserError, match="unknown task kind 'x'"):
        get("x")


@pytest.mark.parametrize("make, reason", [
    (lambda d: d / "missing.toml", "cannot read file: No such file or directory"),
    (lambda d: d, "cannot read file: Is a directory"),
    (lambda d: (d / "bin.toml").write_bytes(b"\x00\xff") and d / "bin.toml", "not UTF-8 text"),
    (lambda d: (d / "bad.toml").write_text("[clusters\n") and d / "bad.toml", "invalid TOML"),
    (lambda d: Path("/dev/null"), "clusters: no cluster configured"),
])
def test_config_check_of_unreadable_files_is_one_line_each(tmp_path, capsys, make, reason):
    from console.cli import main

    before = sorted(tmp_path.rglob("*"))
    target = make(tmp_path)
    made = sorted(tmp_path.rglob("*"))
    assert main(["config", "check", str(target)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and reason in lines[0] and str(target) in lines[0]
    assert sorted(tmp_path.rglob("*")) == made and len(made) >= len(before)


def test_cluster_host_and_ui_options_come_from_their_declaration(tmp_path):
    """The [ui], [clusters.NAME], hosts, replication and hooks keys are declared
    like the tasks' (console/config.py): parser defaults, errors (file, key,
    reason), the schema and the README tables all come from that."""
    from console.config import (
        ClusterConfig,
        ClusterOptions,
        HostOptions,
        UIConfig,
        declared_tables,
    )

    for _, _, cls in declared_tables():
        for o in options_of(cls):
            assert o.spec.doc and o.flag is None, (cls.__name__, o.name)
    cfg = parse_config({"clusters": {"c": {"hosts": {"db1": {"user": "u", "password": "p"}},
                                           "replication": {"user": "r", "password": "x"}}}})
    c = cfg.clusters["c"]
    for o in options_of(ClusterOptions):
        assert getattr(c, o.name) == o.default, o.name
    h = c.hosts[0]
    assert (h.host, h.port, h.user, h.name) == ("127.0.0.1", 3306, "u", "db1")
    assert c.replication is not None and c.replication.user == "r"
    assert c.hooks == {"pre_failover": (), "post_failover": ()}
    assert cfg.ui == UIConfig() and isinstance(c, ClusterOptions) and isinstance(c, ClusterConfig)

    p = tmp_path / "c.toml"
    p.write_text('[ui]\ntheme = "pink"\n[clusters.c]\ncheck_interval = 0.01\n'
                 '[clusters.c.hooks]\npre_failover = [1]\n'
                 '[clusters.c.hosts.db1]\nuser = "u"\npassword = "p"\nport = "x"\n')
    _, errors = check_config(p)
    assert [(e.key, e.reason) for e in errors] == [
        ("ui.theme", "must be one of dark, light, solarized, got 'pink'"),
        ("clusters.c.hosts.db1.port", "must be an integer, got a string 'x'")]
    assert all(str(p) in str(e) for e in errors)
    p.write_text('[clusters.c]\ncheck_interval = 0.01\n[clusters.c.hooks]\npre_failover = [1]\n'
                 '[clusters.c.hosts.db1]\nuser = "u"\npassword = "p"\n')
    _, errors = check_config(p)
    assert [(e.key, e.reason) for e in errors] == [
        ("clusters.c.hooks.pre_failover", "must be a list of strings, got a list [1]")]
    p.write_text('[clusters.c]\ncheck_interval = 0.01\n'
                 '[clusters.c.hosts.db1]\nuser = "u"\npassword = "p"\n')
    _, errors = check_config(p)
    assert [(e.key, e.reason) for e in errors] == [
        ("clusters.c.check_interval", "must be at least 0.1, got 0.01")]

    cluster = config_schema()["properties"]["clusters"]["additionalProperties"]
    assert cluster["required"] == ["hosts"] and cluster["additionalProperties"] is False
    assert cluster["properties"]["check_interval"]["minimum"] == 0.1
    host = cluster["properties"]["hosts"]["additionalProperties"]
    assert host["required"] == ["user"]
    assert {"password", "password_file", "password_env", "tags"} <= set(host["properties"])
    assert {o.name for o in options_of(HostOptions)} <= set(host["properties"])
