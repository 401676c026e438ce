"""The sandbox refuses to start on a nearly full disk (mariadbd would wait
for space forever instead of failing)."""

import shutil
from collections import namedtuple

import pytest

from console.sandbox import Sandbox, SandboxError

Usage = namedtuple("Usage", "total used free")


def test_refuses_new_nodes_without_room(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10 * 2**30, 10 * 2**30, 100 * 2**20))
    sb = Sandbox(tmp_path, replicas=2, redo_log_mb=16)
    with pytest.raises(SandboxError) as e:
        sb._check_disk(3)
    msg = str(e.value)
    assert "\n" not in msg
    assert "only 100 MiB free" in msg and "3 new node(s) need about 448 MiB" in msg
    assert "--redo-log-mb" in msg
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_reused_nodes_need_no_room(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(1, 1, 0))
    Sandbox(tmp_path)._check_disk(0)


def test_redo_log_size_is_bounded(tmp_path):
    with pytest.raises(SandboxError, match="--redo-log-mb must be between 8 and 4096, got 2"):
        Sandbox(tmp_path, redo_log_mb=2)
    assert "innodb_log_file_size=16M" in Sandbox(tmp_path, redo_log_mb=16)._cnf(
        Sandbox(tmp_path).nodes()[0])
