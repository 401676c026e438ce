"""Throttle observations without a server: a status variable is found
whatever its case, and a throttle query that fails throttles and says why
(both were silently ignored)."""

from __future__ import annotations

import pytest

from console.engine.migration.throttle import Observation, Observer, decide, throttle_value


class _Cursor:
    def __init__(self, conn):
        self.conn, self.rows = conn, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        if sql.startswith("SHOW GLOBAL STATUS"):
            self.rows = [("Threads_running", "7")]
        elif self.conn.fail:
            raise RuntimeError("(1146, \"Table 'mig.nowhere' doesn't exist\")")
        else:
            self.rows = [(3,)]

    def fetchall(self):
        return self.rows

    def fetchone(self):
        return self.rows[0] if self.rows else None


class _Conn:
    fail = False

    def cursor(self):
        return _Cursor(self)

    def close(self):
        pass


def test_status_variables_match_whatever_their_case_and_a_failing_throttle_query_throttles():
    conn = _Conn()
    obs = Observer(lambda: conn, {}, "SELECT 1")
    o = obs.observe(["threads_running"], "SELECT 3", None, False)
    assert o.status == {"threads_running": 7.0} and o.throttle_query_value == 3
    assert decide(o, max_lag_millis=1500, max_load={"threads_running": 5.0},
                  critical_load={}).reason == "max-load threads_running=7 >= 5"
    conn.fail = True
    o = obs.observe([], "SELECT COUNT(*) FROM nowhere", None, False)
    v = decide(o, max_lag_millis=1500, max_load={}, critical_load={})
    assert v.reason.startswith("throttle-query error: ") and "doesn't exist" in v.reason


@pytest.mark.parametrize("row, want", [(None, 0), ((None,), 0), ((2,), 2), (("5",), 5), ((b"1",), 1),
                                       (("0.0",), 0)])
def test_throttle_value(row, want):
    assert throttle_value(row) == want


def test_throttle_value_refuses_what_is_no_number():
    with pytest.raises(ValueError):
        throttle_value(("busy",))
    assert decide(Observation(throttle_query_error="x"), max_lag_millis=1500, max_load={},
                  critical_load={}).throttled
