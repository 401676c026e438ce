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
