"""The statements each flavor handler issues (MySQL 8.0/8.4 are unit-tested
here; MariaDB runs against real servers in the integration tests)."""

import pytest

from console.engine.failover.handlers import MariaDBHandler, MySQLHandler, handler_for, render
from console.mysql import gtid as g
from console.mysql.flavor import dialect_for

U = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


class FakeCursor:
    def __init__(self, conn):
        self.conn = conn
        self.rows = []

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def execute(self, sql, args=None):
        self.conn.issued.append((sql, args))
        self.rows = self.conn.answers.get(sql.split()[0] + " " + sql.split()[1], [])

    def fetchall(self):
        return self.rows


class FakeConn:
    def __init__(self, answers=None):
        self.issued = []
        self.answers = answers or {}

    def cursor(self, *_):
        return FakeCursor(self)


def sqls(conn):
    return [s for s, _ in conn.issued]


@pytest.mark.parametrize("version", ["8.0.36", "8.4.2"])
def test_mysql_handler_statements(version):
    h = handler_for(dialect_for(version))
    assert isinstance(h, MySQLHandler)
    c = FakeConn({"SELECT ID": [{"id": 7}, {"id": 9}], "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s,": [{"r": 0}]})
    log = []
    killed = h.fence(c, keep_ids={9}, log=log)
    assert killed == [7]
    assert sqls(c)[:3] == ["SET SESSION lock_wait_timeout = 5", "SET GLOBAL read_only = ON",
                           "SET GLOBAL super_read_only = ON"]
    assert sqls(c)[-2:] == ["KILL CONNECTION 7", "FLUSH TABLES WITH READ LOCK"]
    c = FakeConn()
    h.promote(c, [])
    assert sqls(c) == ["STOP REPLICA", "RESET REPLICA ALL", "SET GLOBAL super_read_only = OFF",
                       "SET GLOBAL read_only = OFF"]
    c = FakeConn()
    log = []
    h.point_to(c, "10.0.0.2", 3306, "repl", "s3cret", log, former_primary=True,
               final=g.parse(f"{U}:1-10", g.MYSQL))
    assert sqls(c)[0].startswith("SELECT ID AS id") and sqls(c)[1] == "UNLOCK TABLES"
    assert "STOP REPLICA" in sqls(c)
    change = next(s for s in log if s.startswith("CHANGE"))
    assert change.startswith("CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.2', SOURCE_PORT=3306")
    assert "SOURCE_AUTO_POSITION=1" in change and "SOURCE_PASSWORD='***'" in change
    assert "s3cret" not in " ".join(log)
    assert sqls(c)[-1] == "START REPLICA"
    assert not any("gtid_slave_pos" in s for s in sqls(c))  # MySQL: auto position needs nothing
    c = FakeConn()
    h.stop_io(c, [])
    assert sqls(c) == ["STOP REPLICA IO_THREAD"]


def test_mysql_wait_and_errant_are_server_side():
    h = handler_for(dialect_for("8.4.0"))
    target = g.parse(f"{U}:1-100", g.MYSQL)
    c = FakeConn({"SELECT WAIT_FOR_EXECUTED_GTID_SET(%s,": [{"r": 0}]})
    log = []
    assert h.wait_gtid(c, target, 5, log) is True
    assert c.issued[0] == ("SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)", (f"{U}:1-100", 5.0))
    c = FakeConn({"SELECT WAIT_FOR_EXECUTED_GTID_SET(%s,": [{"r": 1}]})
    assert h.wait_gtid(c, target, 5, []) is False  # 1 = timeout
    other = "4e11fa47-71ca-11e1-9e33-c80aa9429562"
    c = FakeConn({"SELECT GTID_SUBTRACT(%s,": [{"r": f"{other}:1-3"}]})
    e = h.errant(c, g.parse(f"{U}:1-100,{other}:1-3", g.MYSQL), target)
    assert c.issued[0][0] == "SELECT GTID_SUBTRACT(%s, %s)"
    assert e.format() == f"{other}:1-3"


def test_mysql84_reads_binary_log_status_and_replicas():
    d = dialect_for("8.4.2")
    assert d.binlog_status_sql == "SHOW BINARY LOG STATUS"
    assert d.replica_hosts_sql == "SHOW REPLICAS" and d.replica_status_sql == "SHOW REPLICA STATUS"


def test_mariadb_statements():
    h = handler_for(dialect_for("10.11.6-MariaDB-0+deb12u1"))
    assert isinstance(h, MariaDBHandler)
    assert h.promote_sql() == ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF"]
    plan = h.point_to_sql("h", 3307, "repl", former_primary=True)
    assert plan[2:5] == ["UNLOCK TABLES", "SET GLOBAL read_only = ON", "STOP SLAVE"]
    assert plan[5] == "SET GLOBAL gtid_slave_pos = '<final gtid>'"
    assert "MASTER_USE_GTID=slave_pos" in plan[6] and "MASTER_PASSWORD='***'" in plan[6]
    # a former primary: queued writers killed before the read lock goes, then the
    # replication start is the position read under the fence
    c = FakeConn({"SELECT ID": [{"id": 41}, {"id": 42}]})
    h.point_to(c, "h", 3307, "repl", "pw", [], former_primary=True, keep_ids={42},
               final=g.parse("0-1-77", g.MARIADB))
    assert sqls(c)[1:4] == ["KILL CONNECTION 41", "UNLOCK TABLES", "SET GLOBAL read_only = ON"]
    assert "SET GLOBAL gtid_slave_pos = '0-1-77'" in sqls(c)
    with pytest.raises(ValueError):
        h.d.before_becoming_replica_sql("0-1-1'; DROP TABLE x; --")
    assert h.d.wait_for_gtid_sql() == "SELECT MASTER_GTID_WAIT(%s, %s)"
    # errant in Python (no GTID_SUBTRACT): nothing is sent to the server
    c = FakeConn()
    e = h.errant(c, g.parse("0-1-10,5-3-2", g.MARIADB), g.parse("0-1-10", g.MARIADB))
    assert c.issued == [] and e.describe() == "domain 5: 1-2 (2)"


def test_render_masks_the_secret_and_quotes():
    assert render("X %s %s %s", ("it's", 3, "pw"), secret_index=2) == "X 'it''s' 3 '***'"
