"""Pure pieces of issue 16's gh-ost flags."""

from __future__ import annotations

import pytest

from console.engine.migration.triggers import check_trigger_options, new_trigger_name
from console.errors import UserError


def test_trigger_names_take_the_suffix_or_lose_it():
    assert new_trigger_name("t_ai", "_v2", False) == "t_ai_v2"
    assert new_trigger_name("t_ai_v2", "_v2", False) == "t_ai_v2_v2"
    assert new_trigger_name("t_ai_v2", "_v2", True) == "t_ai"
    assert new_trigger_name("_v2", "_v2", True) == "_v2_v2"      # nothing would be left


@pytest.mark.parametrize("include, suffix, remove, says", [
    (False, "_v2", False, "--trigger-suffix needs --include-triggers"),
    (True, "", True, "--remove-trigger-suffix-if-exists needs"),
    (True, "-x", False, "letters, digits"),
])
def test_trigger_options_refused(include, suffix, remove, says):
    with pytest.raises(UserError, match=says):
        check_trigger_options(include, suffix, remove)


def test_default_retries_bound_the_attempts_of_a_chunk_that_meets_lock_conflicts():
    import pymysql

    from console.engine.migration.copy import retry_locks

    calls = []

    def deadlock():
        calls.append(1)
        raise pymysql.err.OperationalError(1213, "Deadlock found")

    with pytest.raises(pymysql.err.OperationalError):
        retry_locks(deadlock, 3)
    assert len(calls) == 3


def test_default_retries_bound_the_attempts_of_an_apply_batch(monkeypatch):
    import pymysql

    from console.engine.migration.apply import Applier

    a = Applier.__new__(Applier)            # (no thread, no server: only the retry loop)
    a.retries, a.error = 4, ""
    a.ins = type("I", (), {"database": "d", "changelog": "t_ghc"})()
    a.builder = type("B", (), {"statements": staticmethod(lambda ops: [("DO 1", [])])})()
    calls = []

    def once(conn, stmts):
        calls.append(1)
        raise pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")

    monkeypatch.setattr(a, "_apply_once", once)
    monkeypatch.setattr("console.engine.migration.apply.time.sleep", lambda s: None)
    with pytest.raises(pymysql.err.OperationalError):
        a._apply(None, [("ins", {})], "0-1-1")
    assert len(calls) == 4


def test_a_socket_command_runs_the_interactive_command_hook(tmp_path):
    from console.engine.migration.control import handle_line
    from console.engine.migration.hooks import Hooks

    out = tmp_path / "cmd"
    h = tmp_path / "gh-ost-on-interactive-command-log"
    h.write_text(f'#!/bin/sh\necho "$GH_OST_COMMAND $GH_OST_TABLE_NAME" > "{out}"\n')
    h.chmod(0o755)
    (tmp_path / "gh-ost-on-startup").write_text("#!/bin/sh\nexit 1\n")   # (another event: not run)
    (tmp_path / "gh-ost-on-startup").chmod(0o755)

    class Task:
        engine = None
        hooks = Hooks(str(tmp_path), lambda: {"GH_OST_TABLE_NAME": "t"})

        def commands(self):
            return {}

    handle_line(Task(), "throttle")
    assert out.read_text().strip() == "throttle t"


def test_hook_names_of_a_longer_event_are_not_taken(tmp_path):
    from console.engine.migration.hooks import HookFailed, Hooks

    for name in ("gh-ost-on-startup", "gh-ost-on-start-replication-x", "gh-ost-on-status"):
        (tmp_path / name).write_text("#!/bin/sh\nexit 0\n")
        (tmp_path / name).chmod(0o755)
    (tmp_path / "gh-ost-on-success-notify").write_text("#!/bin/sh\necho boom >&2\nexit 2\n")
    (tmp_path / "gh-ost-on-success-notify").chmod(0o755)
    hooks = Hooks(str(tmp_path), dict)
    assert [p.name for p in hooks.find("start-replication")] == ["gh-ost-on-start-replication-x"]
    assert [p.name for p in hooks.find("startup")] == ["gh-ost-on-startup"]
    assert hooks.find("stop-replication") == []
    with pytest.raises(HookFailed, match="gh-ost-on-success-notify .success. failed with exit code 2: boom"):
        hooks.run("success")
