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
    a.builder = type("B", (), {"statements": staticmethod(lambda ops: [("DO 1", [])])})()
    calls = []

    def once(conn, stmts):
        calls.append(1)
        raise pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")

    monkeypatch.setattr(a, "_apply_once", once)
    monkeypatch.setattr("console.engine.migration.apply.time.sleep", lambda s: None)
    with pytest.raises(pymysql.err.OperationalError):
        a._apply(None, [("ins", {})])
    assert len(calls) == 4
