"""A fixed topology feed for snapshot tests (rendering only: no server)."""

from console.config import parse_config
from console.engine.engine import Engine
from console.engine.task import Task
from console.engine.topology.discovery import assign_roles
from console.engine.topology.monitor import MonitorDetail
from console.mysql.flavor import ReplicaStatus
from console.mysql.probe import HostState


def channel(port, io="Yes", sql="Yes", behind=0, err=""):
    return ReplicaStatus("", "127.0.0.1", port, io, sql, behind, 0, "", 0, err, "Slave_Pos",
                         "mysql-bin.000003", 4711, "mysql-bin.000003", 4711, 0, 1, "0-1-1234")


def fixed_hosts():
    common = dict(version="10.11.19-MariaDB", flavor="mariadb", log_bin=True, log_slave_updates=True,
                  binlog_file="mysql-bin.000003", binlog_pos=4711, probed_at=0.0)
    return [
        HostState("db1", "127.0.0.1:3306", True, server_id=1, gtid_current_pos="0-1-1234",
                  gtid_binlog_pos="0-1-1234", **common),
        HostState("db2", "127.0.0.1:3307", True, server_id=2, read_only=True, gtid_current_pos="0-1-1234",
                  channels=(channel(3306),), upstream="127.0.0.1:3306", heartbeat_age=0.012, **common),
        HostState("db3", "127.0.0.1:3308", True, server_id=3, read_only=True, gtid_current_pos="0-1-1200",
                  channels=(channel(3306, behind=3),), upstream="127.0.0.1:3306", heartbeat_age=2.5, **common),
        HostState("db4", "127.0.0.1:3309", False, error="error 2003: Can't connect to MySQL server on '127.0.0.1' (111)",
                  probed_at=0.0),
    ]


class FixedMonitor(Task):
    kind = "monitor"

    def __init__(self, cluster: str):
        super().__init__(f"monitor:{cluster}")
        hosts = fixed_hosts()
        hosts[0] = hosts[0].with_(heartbeat_age=0.01)
        topo = assign_roles(cluster, hosts, None)
        topo = type(topo)(cluster=cluster, hosts=topo.hosts, taken_at=0.0, problems=topo.problems)
        self.topo = topo

    def run(self):
        pass

    def detail(self):
        hist = (("127.0.0.1:3307", (0.0, 0.01, 0.02, 0.01, 0.0, 0.03)),
                ("127.0.0.1:3308", (0.5, 1.0, 1.5, 2.0, 2.5, 2.5)))
        return MonitorDetail("prod", self.topo, hist, 1.0, 10, True)


def fixed_engine(tmp_path) -> Engine:
    cfg = parse_config({
        "state_dir": str(tmp_path / "state"),
        "ui": {"refresh_interval": 60.0},
        "clusters": {"prod": {"hosts": {f"db{i}": {"port": 3305 + i, "user": "ops", "password": "x"}
                                        for i in range(1, 5)}}},
    })
    engine = Engine(cfg)
    engine.add_task(FixedMonitor("prod"))
    engine._events.clear()  # no timestamps in the picture
    return engine
