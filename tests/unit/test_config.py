import os
import subprocess
import sys

import pytest

from console.config import ConfigError, Secret, load_config

GOOD = """
state_dir = "state"
[ui]
theme = "light"
refresh_interval = 2
[clusters.main]
heartbeat = true
[clusters.main.replication]
user = "repl"
password_env = "DBOPS_TEST_REPL_PW"
[clusters.main.hosts.db1]
host = "10.0.0.1"
port = 3306
user = "ops"
password_file = "pw.txt"
tags = { dc = "eu1" }
[clusters.main.hosts.db2]
host = "10.0.0.2"
user = "ops"
password = "inline-secret"
"""


def write(tmp_path, text, pw=True):
    if pw:
        (tmp_path / "pw.txt").write_text("s3cret\n")
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_good_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DBOPS_TEST_REPL_PW", "r")
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.state_dir == tmp_path / "state"
    assert cfg.ui.theme == "light" and cfg.ui.refresh_interval == 2.0
    c = cfg.cluster("main")
    assert [h.name for h in c.hosts] == ["db1", "db2"]
    assert c.hosts[0].password.reveal() == "s3cret"
    assert c.hosts[0].tags == {"dc": "eu1"}
    assert c.hosts[1].port == 3306
    assert c.replication.password.reveal() == "r"
    assert "s3cret" not in repr(cfg) and "inline-secret" not in repr(cfg)


@pytest.mark.parametrize("old,new,key,reason", [
    ('password = "inline-secret"', 'pasword = "x"', "clusters.main.hosts.db2.pasword", "did you mean 'password'"),
    ('password = "inline-secret"', "", "clusters.main.hosts.db2", "no password source"),
    ("port = 3306", 'port = "3306"', "clusters.main.hosts.db1.port", "must be an integer"),
    ('theme = "light"', 'theme = "pink"', "ui.theme", "must be one of"),
    ('password_file = "pw.txt"', 'password_file = "nope.txt"', "clusters.main.hosts.db1.password_file", "cannot read password file"),
    ("[ui]", "[uii]", "uii", "unknown key"),
])
def test_config_errors_name_file_and_key(tmp_path, monkeypatch, old, new, key, reason):
    monkeypatch.setenv("DBOPS_TEST_REPL_PW", "r")
    p = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and key in msg and reason in msg
    assert "\n" not in msg


def test_missing_env_var(tmp_path, monkeypatch):
    monkeypatch.delenv("DBOPS_TEST_REPL_PW", raising=False)
    with pytest.raises(ConfigError, match="DBOPS_TEST_REPL_PW is not set"):
        load_config(write(tmp_path, GOOD))


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "missing.toml")
    p = tmp_path / "bad.toml"
    p.write_text("[clusters\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(p)


def test_secret_never_prints():
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and s.reveal() == "hunter2"


@pytest.mark.parametrize("old,new,key", [
    ('password = "inline-secret"', 'pasword = "x"', "clusters.main.hosts.db2.pasword"),
    ('password = "inline-secret"', "", "clusters.main.hosts.db2"),
])
def test_cli_config_error_is_one_line_exit_2(tmp_path, old, new, key):
    p = write(tmp_path, GOOD.replace(old, new))
    env = dict(os.environ, DBOPS_TEST_REPL_PW="r")
    r = subprocess.run([sys.executable, "-m", "console", "status", "--config", str(p)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(p) in lines[0] and key in lines[0]
    assert "Traceback" not in r.stderr


# ---- issue 12 item 19: bounds, empty sources, empty configs -------------------------

TASKS = """
[tasks.r]
kind = "relay"
cluster = "main"
relay_dir = "relay"
server_id = 4242
[tasks.b]
kind = "backup"
cluster = "main"
storage = "backup"
[tasks.m]
kind = "migration"
cluster = "main"
database = "d"
table = "t"
alter = "ADD COLUMN c INT"
"""


@pytest.mark.parametrize("old,new,key,reason", [
    ("port = 3306", "port = 70000", "clusters.main.hosts.db1.port", "between 1 and 65535"),
    ("port = 3306", "port = 0", "clusters.main.hosts.db1.port", "between 1 and 65535"),
    ("refresh_interval = 2", "refresh_interval = nan", "ui.refresh_interval", "finite"),
    ("refresh_interval = 2", "refresh_interval = inf", "ui.refresh_interval", "finite"),
    ("refresh_interval = 2", "refresh_interval = -1", "ui.refresh_interval", "at least 0.1"),
    ("heartbeat = true", "heartbeat = true\nheartbeat_interval = -0.5", "clusters.main.heartbeat_interval", "at least"),
    ("heartbeat = true", "heartbeat = true\ncheck_interval = nan", "clusters.main.check_interval", "finite"),
    ("heartbeat = true", "heartbeat = true\nblock_period = -1", "clusters.main.block_period", "at least 0"),
    ("server_id = 4242", "server_id = 0", "tasks.r.server_id", "between 1 and 4294967295"),
    ("server_id = 4242", "server_id = 4294967296", "tasks.r.server_id", "between 1 and 4294967295"),
    ("server_id = 4242", "server_id = 4242\nreconnect_max = 0", "tasks.r.reconnect_max", "between 0.5 and 3600"),
    ('storage = "backup"', 'storage = "backup"\nserver_id = 5000000000', "tasks.b.server_id", "between 1 and 4294967295"),
    ('storage = "backup"', 'storage = "backup"\nkeep_snapshots = -1', "tasks.b.keep_snapshots", "at least 0"),
    ('alter = "ADD COLUMN c INT"', 'alter = "ADD COLUMN c INT"\nchunk_size = 5000000', "tasks.m.chunk_size", "between 10 and 1000000"),
    ('alter = "ADD COLUMN c INT"', 'alter = "ADD COLUMN c INT"\ndml_batch_size = 5000', "tasks.m.dml_batch_size", "between 1 and 1000"),
    ('alter = "ADD COLUMN c INT"', 'alter = "ADD COLUMN c INT"\ndefault_retries = 0', "tasks.m.default_retries", "between 1 and 100000"),
    ('alter = "ADD COLUMN c INT"', 'alter = "ADD COLUMN c INT"\ncritical_load = "Threads_running"', "tasks.m.critical_load", "critical"),
])
def test_numeric_bounds_name_file_key_reason(tmp_path, monkeypatch, old, new, key, reason):
    monkeypatch.setenv("DBOPS_TEST_REPL_PW", "r")
    p = write(tmp_path, (GOOD + TASKS).replace(old, new))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and f"{key}:" in msg and reason in msg, msg
    assert "\n" not in msg


def test_good_config_with_tasks_still_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("DBOPS_TEST_REPL_PW", "r")
    cfg = load_config(write(tmp_path, GOOD + TASKS))
    assert cfg.task("r").options.server_id == 4242
    assert cfg.task("m").options.chunk_size == 2000


def test_empty_password_file_is_refused_at_load(tmp_path, monkeypatch):
    monkeypatch.setenv("DBOPS_TEST_REPL_PW", "r")
    p = write(tmp_path, GOOD)
    (tmp_path / "pw.txt").write_text("")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and "clusters.main.hosts.db1.password_file:" in msg and "empty" in msg, msg
    assert str(tmp_path / "pw.txt") in msg
    (tmp_path / "pw.txt").write_text("\n\n")  # only blank lines: no password either
    with pytest.raises(ConfigError, match="empty"):
        load_config(p)


def test_password_file_that_is_a_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DBOPS_TEST_REPL_PW", "r")
    p = write(tmp_path, GOOD.replace('password_file = "pw.txt"', 'password_file = "."'))
    with pytest.raises(ConfigError, match="clusters.main.hosts.db1.password_file: cannot read password file"):
        load_config(p)


@pytest.mark.parametrize("text", ["", "# only a comment\n", 'state_dir = "s"\n[ui]\ntheme = "dark"\n'])
def test_config_without_clusters_is_an_error(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and "clusters" in msg and "no cluster" in msg, msg


def test_dev_null_config_is_an_error():
    with pytest.raises(ConfigError, match="/dev/null: clusters: no cluster"):
        load_config("/dev/null")


def _cli(args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True,
                          env=dict(os.environ, DBOPS_TEST_REPL_PW="r", **(env or {})), timeout=120,
                          cwd=cwd or os.getcwd())


@pytest.mark.parametrize("argv", [
    [], ["status"], ["monitor", "--once"], ["switchover", "--dry-run"], ["failover", "--dry-run"],
    ["relay", "--task", "r"], ["backup", "--task", "b"], ["backup", "status", "--task", "b"],
    ["restore", "--task", "b", "--to-gtid", "0-1-1", "--target-dir", "restored"],
    ["sandbox", "status"], ["serve"],
    ["migrate", "--host", "127.0.0.1", "--port", "3306", "--user", "u", "--password-file", "pw.txt",
     "--database", "d", "--table", "t", "--alter", "ADD COLUMN c INT"],
], ids=lambda a: " ".join(a[:2]) or "console")
def test_every_subcommand_refuses_a_bad_config_in_one_line_exit_2(tmp_path, argv):
    p = write(tmp_path, (GOOD + TASKS).replace("port = 3306", "port = 70000"))
    r = _cli([*argv, "--config", str(p)], cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(p) in lines[0] and "clusters.main.hosts.db1.port:" in lines[0] and "65535" in lines[0]
    assert "Traceback" not in r.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.toml", "pw.txt"]  # nothing created


@pytest.mark.parametrize("text", ["", None])
def test_cli_empty_config_exit_2(tmp_path, text):
    p = tmp_path / "c.toml"
    if text is not None:
        p.write_text(text)
    path = str(p) if text is not None else "/dev/null"
    r = _cli(["status", "--config", path])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and path in r.stderr and "no cluster" in r.stderr


def test_cli_empty_password_file_exit_2(tmp_path):
    p = write(tmp_path, GOOD)
    (tmp_path / "pw.txt").write_text("")
    r = _cli(["status", "--config", str(p)])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1
    assert "password_file" in r.stderr and "empty" in r.stderr and "using password" not in r.stderr


@pytest.mark.parametrize("old,new,key,reason", [
    ("server_id = 4242", 'server_id = 4242\nhost = "db9"', "tasks.r.host", "no host 'db9' in cluster main"),
    ('storage = "backup"', 'storage = "backup"\nsnapshot_host = "db7"', "tasks.b.snapshot_host", "no host 'db7'"),
    ('table = "t"', 'table = "t"\nhost = "nope"', "tasks.m.host", "no host 'nope'"),
])
def test_task_host_must_be_a_host_of_its_cluster(tmp_path, monkeypatch, old, new, key, reason):
    monkeypatch.setenv("DBOPS_TEST_REPL_PW", "r")
    p = write(tmp_path, (GOOD + TASKS).replace(old, new))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and f"{key}:" in msg and reason in msg, msg


def test_task_host_by_name_or_address_is_fine(tmp_path, monkeypatch):
    monkeypatch.setenv("DBOPS_TEST_REPL_PW", "r")
    text = (GOOD + TASKS).replace("server_id = 4242", 'server_id = 4242\nhost = "db2"')
    text = text.replace('storage = "backup"', 'storage = "backup"\nhost = "10.0.0.1:3306"')
    cfg = load_config(write(tmp_path, text))
    assert cfg.task("r").options.host == "db2" and cfg.task("b").options.host == "10.0.0.1:3306"


def test_task_without_cluster_needs_a_single_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("DBOPS_TEST_REPL_PW", "r")
    two = GOOD + '[clusters.other.hosts.x]\nuser = "u"\npassword = "p"\n'
    p = write(tmp_path, two + TASKS.replace('cluster = "main"\nrelay_dir', 'relay_dir'))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "tasks.r.cluster:" in msg and "main, other" in msg, msg
    one = write(tmp_path, GOOD + TASKS.replace('cluster = "main"\nrelay_dir', 'relay_dir'))
    assert load_config(one).task("r").cluster is None  # one cluster: it is the task's


@pytest.mark.parametrize("argv", [["backup", "--task", "b", "verify"], ["backup", "--task", "b", "list"],
                                  ["backup", "--task", "b", "retention"],
                                  ["restore", "--task", "b", "--to-gtid", "0-1-5", "--target-dir", "t"]])
def test_reading_a_backup_that_does_not_exist_says_so_and_creates_nothing(tmp_path, argv):
    """Review finding: `backup verify` created the missing storage directory
    and said OK for 0 segments; list, retention and restore created it too."""
    p = write(tmp_path, GOOD + TASKS)
    r = _cli([*argv, "--config", str(p)], cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no backup at" in lines[0] and "backup" in lines[0], r.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.toml", "pw.txt"]  # nothing created
