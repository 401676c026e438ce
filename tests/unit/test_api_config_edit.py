"""Declaring and removing a task in the config file's text: the rest of the
file (comments, order, other tables) kept byte for byte; every problem
refused with nothing written."""

import pytest

from console.api.config_edit import DeclarationError, declare_task, declared_text, remove_task

BASE = """# my config: keep this comment
state_dir = "{state}"

[clusters.c1]  # the only cluster
[clusters.c1.hosts.a]
host = "127.0.0.1"
port = 3306
user = "u"
password = "pw"

# a relay we keep
[tasks.keep]
kind = "relay"
cluster = "c1"
relay_dir = "{state}/keep"   # inline comment
server_id = 7001

# the one to replace, with a sub-table comment after it
[tasks.old]
kind = "relay"
cluster = "c1"
relay_dir = "{state}/old"
server_id = 7002

# the trailer belongs to what follows
[ui]
theme = "dark"
"""


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "dbops.toml"
    p.write_text(BASE.format(state=tmp_path / "state"))
    p.chmod(0o640)
    return p


def test_append_keeps_every_byte_before(cfg):
    before = cfg.read_text()
    block = declare_task(cfg, "new-relay", "relay", "c1", True,
                         {"relay_dir": "/tmp/x y", "server_id": 7003, "heartbeat": 0.5})
    after = cfg.read_text()
    assert after.startswith(before)
    assert after.endswith(block)
    assert 'relay_dir = "/tmp/x y"' in block and "autostart = true" in block
    assert oct(cfg.stat().st_mode & 0o777) == oct(0o640)


def test_replace_in_the_middle_keeps_neighbours_and_their_comments(cfg):
    before = cfg.read_text()
    declare_task(cfg, "old", "relay", "c1", False, {"relay_dir": "/r", "server_id": 7010})
    after = cfg.read_text()
    assert "server_id = 7002" not in after and "server_id = 7010" in after
    assert "# the trailer belongs to what follows\n[ui]" in after
    assert "# the one to replace" in after  # the comment before its header stays
    assert after.count("[tasks.") == before.count("[tasks.")
    assert 'relay_dir = "' in after and "# inline comment" in after


def test_remove_cuts_only_that_table(cfg):
    assert remove_task(cfg, "old")
    after = cfg.read_text()
    assert "[tasks.old]" not in after and "7002" not in after
    assert "[tasks.keep]" in after and "# the trailer belongs to what follows" in after
    assert "# the one to replace" not in after  # its own comment, right above it, went too
    assert "# a relay we keep" in after
    assert not remove_task(cfg, "old")


def test_problems_refused_and_nothing_written(cfg):
    before = cfg.read_text()
    with pytest.raises(DeclarationError) as e:
        declare_task(cfg, "bad", "relay", "c1", False,
                     {"relay_dir": "/r", "server_id": 0, "heartbeat": -1, "nope": 1})
    text = str(e.value)
    assert "server_id" in text and "heartbeat" in text and "nope" in text
    assert len(e.value.problems) >= 3
    with pytest.raises(DeclarationError, match="kind"):
        declare_task(cfg, "bad", "no-such-kind", "c1", False, {})
    with pytest.raises(DeclarationError, match="cluster"):
        declare_task(cfg, "bad", "relay", "nowhere", False, {"relay_dir": "/r"})
    with pytest.raises(DeclarationError):
        declare_task(cfg, "bad", "relay", "c1", False, {"relay_dir": {"a": 1}})
    assert cfg.read_text() == before
    assert sorted(p.name for p in cfg.parent.iterdir()) == ["dbops.toml"]


def test_quoted_names_and_sub_tables():
    text = '[tasks."my task"]\nkind = "relay"\n[tasks."my task".x]\na = 1\n[tasks.other]\nkind = "relay"\n'
    out = declared_text(text, "my task", None)
    assert out == '[tasks.other]\nkind = "relay"\n'
    out = declared_text(text, "my task", '[tasks."my task"]\nkind = "backup"\n')
    assert out.startswith('[tasks."my task"]\nkind = "backup"\n\n[tasks.other]')
