import pymysql
import pytest

from console.config import Secret
from console.mysql.connection import DBError, Endpoint, connect, describe_error
from console.mysql.retry import backoff_delays, with_retries


def ep(pw="hunter2-secret"):
    return Endpoint("127.0.0.1", 1, "ops", Secret(pw), "db1")


def test_driver_errors_are_redacted_one_line():
    exc = pymysql.err.OperationalError(1062, "Duplicate entry 'hunter2-secret'\nfor key 'k'")
    err = describe_error(exc, ep())
    assert "hunter2-secret" not in str(err) and "***" in str(err)
    assert "\n" not in str(err) and err.code == 1062
    assert str(err).startswith("db1 (127.0.0.1:1): error 1062")


def test_access_denied_names_the_user_and_what_to_check():
    exc = pymysql.err.OperationalError(
        1045, "Access denied for user 'ops'@'10.0.0.9' (using password: YES) hunter2-secret")
    err = describe_error(exc, Endpoint("127.0.0.1", 1, "ops", Secret(file="/etc/dbops/ops.pw"), "db1"))
    assert str(err) == ("db1 (127.0.0.1:1): error 1045: access denied for user 'ops'@'10.0.0.9': "
                        "check password / password_file (read from /etc/dbops/ops.pw)")
    assert err.code == 1045 and "hunter2" not in str(err)
    inline = describe_error(pymysql.err.OperationalError(1045, "denied"), ep())
    assert "for user 'ops': check password / password_file (given inline)" in str(inline)


def test_unreachable_host_is_a_clear_dberror():
    with pytest.raises(DBError) as e:
        connect(ep(), connect_timeout=0.5)
    assert "db1 (127.0.0.1:1)" in str(e.value) and "hunter2" not in str(e.value)


def test_retries_only_transient_errors():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise pymysql.err.OperationalError(2013, "Lost connection")
        return "ok"

    assert with_retries(flaky, attempts=3, sleep=lambda s: None) == "ok"
    calls.clear()

    def fatal():
        calls.append(1)
        raise pymysql.err.OperationalError(1045, "denied")

    with pytest.raises(pymysql.err.OperationalError):
        with_retries(fatal, attempts=3, sleep=lambda s: None)
    assert len(calls) == 1


def test_backoff_grows_with_jitter_and_cap():
    import random

    d = backoff_delays(base=0.1, cap=2.0, rng=random.Random(1))
    vals = [next(d) for _ in range(12)]
    assert all(0.05 <= v <= 2.0 for v in vals)
    assert max(vals[6:]) > max(vals[:2])


def test_preferred_tls_context_is_shared_and_keeps_pymysqls_semantics():
    """pymysql's default ("preferred": encrypt if offered, verify nothing)
    built a context per connection; ours builds it once, with the same
    settings, and leaves explicit TLS options to pymysql."""
    import ssl

    from console.mysql.connection import Connection, preferred_tls_context

    a, b = preferred_tls_context(), preferred_tls_context()
    assert a is b
    assert a.verify_mode == ssl.CERT_NONE and a.check_hostname is False
    c = Connection(host="127.0.0.1", port=1, defer_connect=True)
    assert c.ctx is a and c.ssl and not c._ssl_required
    strict = Connection(host="127.0.0.1", port=1, defer_connect=True,
                        ssl={"verify_mode": "required", "check_hostname": True})
    assert strict.ctx is not a and strict._ssl_required
    assert strict.ctx.verify_mode == ssl.CERT_REQUIRED


class _Cur:
    def __init__(self, fail_on=()):
        self.sql, self.fail_on = [], fail_on

    def execute(self, sql, args=None):
        self.sql.append(sql)
        if sql in self.fail_on:
            raise pymysql.err.InterfaceError(0, "")


def test_transaction_commits_or_rolls_back_and_keeps_the_first_error():
    from console.mysql.connection import transaction

    cur = _Cur()
    with transaction(cur):
        cur.execute("INSERT 1")
    assert cur.sql == ["START TRANSACTION", "INSERT 1", "COMMIT"]
    cur = _Cur()
    with transaction(cur, end="ROLLBACK"):
        cur.execute("SELECT 1")
    assert cur.sql == ["START TRANSACTION", "SELECT 1", "ROLLBACK"]
    # the connection died: the ROLLBACK fails too, and the error that says
    # what happened is the one raised (not pymysql's InterfaceError(0, ''))
    cur = _Cur(fail_on=("ROLLBACK",))
    with pytest.raises(pymysql.err.OperationalError, match="Lost connection"):
        with transaction(cur):
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")
    assert cur.sql == ["START TRANSACTION", "ROLLBACK"]
