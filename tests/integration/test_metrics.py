"""Prometheus metrics against real servers: ``serve --metrics-listen`` with
a relay, a backup, a (postponed) migration and a failover task over the
sandbox, scraped by a real Prometheus server (Debian's
``/usr/bin/prometheus``, started here on a free port with its own storage
in the test's tmp dir, scraping every second); series read back through
Prometheus's HTTP API.  A task removed by a reload leaves the
scrape at once.  A bad ``--metrics-listen`` is one line, exit 2, and makes
no state directory."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.integration.relay_support import gtid_pos, wait_meta_gtid
from tests.integration.test_serve import NotifySocket, cluster_part, relay_task, reload, write_rows
from tests.support.backup_helpers import wait_for

pytestmark = pytest.mark.integration

PROMETHEUS = "/usr/bin/prometheus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backup_task(name: str, storage: Path, server_id: int) -> str:
    return (f'\n[tasks.{name}]\nkind = "backup"\ncluster = "sandbox"\nstorage = "{storage}"\n'
            f'server_id = {server_id}\nstart_from = "now"\nreconnect_max = 1.0\nautostart = true\n')


def migration_task(name: str, throttle_flag: Path) -> str:
    """A migration of metrics_t.m that waits for its cut-over (postponed)."""
    return (f'\n[tasks.{name}]\nkind = "migration"\ncluster = "sandbox"\ndatabase = "metrics_t"\n'
            f'table = "m"\nalter = "ADD COLUMN z INT"\nthrottle_flag_file = "{throttle_flag}"\n'
            f'initially_drop_ghost_table = true\nautostart = true\n')


def scrape(port: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        return r.headers["Content-Type"], r.read().decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first series ``name`` with these labels in an exposition."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


class Prometheus:
    """Debian's Prometheus on a free port, scraping ``target`` every second,
    its storage under ``root``; stopped by its pid."""

    def __init__(self, root: Path, target: str):
        root.mkdir(parents=True)
        cfg = root / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                       "scrape_configs:\n  - job_name: dbops\n"
                       f"    static_configs:\n      - targets: ['{target}']\n")
        self.port = free_port()
        self.log = open(root / "prometheus.log", "w")
        self.p = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}",
                                   f"--storage.tsdb.path={root / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{self.port}"],
                                  stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, q: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.loads(r.read())
        except OSError:
            return []  # not up yet
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, q: str) -> float | None:
        res = self.query(q)
        return float(res[0]["value"][1]) if res else None

    def wait_value(self, q: str, pred=lambda v: True, timeout: float = 120) -> float:
        return wait_for(lambda: (v := self.value(q)) is not None and pred(v) and (v,),
                        timeout=timeout, what=f"Prometheus: {q}")[0]

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(30)
        self.log.close()


@pytest.fixture
def prometheus(tmp_path):
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        started.append(Prometheus(tmp_path / "prometheus", target))
        return started[-1]

    yield start
    for p in started:
        p.stop()


def test_prometheus_scrapes_serve_metrics(sandbox, tmp_path, serve, prometheus):
    """A relay, a backup, a migration and a failover task under ``serve
    --metrics-listen``: Prometheus scrapes them; host, task, relay, backup,
    failover and migration series read back through its query API, the
    relay's byte counter growing as rows are written, the migration's
    throttle flag file showing as its reason label."""
    h = sandbox
    state, relay_dir, storage = tmp_path / "state", tmp_path / "relay", tmp_path / "backup"
    cfg = tmp_path / "serve.toml"
    flag = tmp_path / "throttle.flag"
    cfg.write_text(cluster_part(h, state, heartbeat=True) + relay_task("m1", relay_dir, 5401)
                   + backup_task("b1", storage, 5402) + migration_task("mig", flag)
                   + '\n[tasks.fo]\nkind = "failover"\ncluster = "sandbox"\nautostart = true\n')
    h.sql("node1", "DROP DATABASE IF EXISTS metrics_t", "CREATE DATABASE metrics_t",
          "CREATE TABLE metrics_t.m (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
          "INSERT INTO metrics_t.m (v) SELECT seq FROM metrics_t.seq_1_to_300")
    port = free_port()
    cli = serve(cfg, None, "--metrics-listen", f"127.0.0.1:{port}")
    wait_for(lambda: any(ln.startswith("serve: serving ") for ln in cli.err) or cli.p.poll() is not None,
             timeout=60, what="serve running")
    assert cli.p.poll() is None, cli.err
    assert f"serve: metrics at http://127.0.0.1:{port}/metrics (open: no token)" in cli.err, cli.err
    write_rows(h)
    wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)

    # the endpoint itself: text format, no token asked
    ctype, text = scrape(port)
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    assert sample(text, "dbops_task_state", task="m1", state="running", cluster="sandbox") == 1.0, text
    wait_for(lambda: (sample(scrape(port)[1], "dbops_host_binlog_bytes", host="node1") or 0) > 0,
             timeout=60, what="node1's binlog bytes in the scrape")

    prom = prometheus(f"127.0.0.1:{port}")
    assert prom.wait_value('up{job="dbops"}', lambda v: v == 1.0) == 1.0
    assert prom.wait_value('dbops_host_up{cluster="sandbox",host="node1"}') == 1.0
    assert prom.wait_value('dbops_host_role{host="node1",role="primary"}') == 1.0
    assert prom.wait_value('dbops_host_role{host="node2",role="replica"}') == 1.0
    assert prom.wait_value('dbops_host_replication_io_running{host="node2"}') == 1.0
    assert prom.wait_value('dbops_host_read_only{host="node1"}') == 0.0
    assert prom.wait_value('dbops_host_replication_lag_seconds{host="node2",method="heartbeat"}') >= 0
    assert prom.wait_value('dbops_task_state{task="m1",kind="relay",state="running"}') == 1.0
    assert prom.wait_value('dbops_task_state{task="b1",kind="backup",state="running"}') == 1.0
    assert prom.wait_value('dbops_task_state{task="monitor:sandbox",state="running"}') == 1.0
    assert prom.wait_value('dbops_relay_connected{task="m1"}', lambda v: v == 1.0) == 1.0
    assert prom.wait_value('dbops_relay_disk_bytes{task="m1"}', lambda v: v > 0) > 0
    before = prom.wait_value('dbops_relay_received_bytes_total{task="m1",cluster="sandbox"}',
                             lambda v: v > 0)
    write_rows(h, 20)
    prom.wait_value('dbops_relay_received_bytes_total{task="m1"}', lambda v: v > before)
    assert prom.wait_value('dbops_relay_events_total{task="m1"}', lambda v: v > 0) > 0
    prom.wait_value('dbops_backup_checkpoint_age_seconds{task="b1"}', lambda v: v >= 0)
    prom.wait_value('dbops_backup_transactions_total{task="b1"}', lambda v: v > 0)
    prom.wait_value('dbops_backup_segments{task="b1"}', lambda v: v > 0)
    # the failover task watches (automatic failover off: the sandbox's default)
    assert prom.wait_value('dbops_failover_auto_enabled{task="fo",cluster="sandbox"}') == 0
    assert prom.wait_value('dbops_failover_recoveries_total{task="fo",kind="failover",outcome="ok"}') == 0
    assert prom.wait_value('dbops_task_phase{task="fo",phase="watching"}') == 1
    # the migration copies the 300 rows and waits for its cut-over; the
    # throttle flag file shows as the reason label
    prom.wait_value('dbops_task_phase{task="mig",kind="migration",phase="postponed"}')
    assert prom.wait_value('dbops_migration_rows_copied{task="mig"}', lambda v: v == 300) == 300
    assert prom.wait_value('dbops_migration_rows_estimated{task="mig"}') > 0
    assert prom.wait_value('dbops_migration_cutover_attempts_total{task="mig"}') == 0
    assert prom.wait_value('sum(dbops_migration_throttled{task="mig"})') == 0
    flag.touch()
    prom.wait_value('dbops_migration_throttled{task="mig",reason="flag-file"}', lambda v: v == 1)
    assert prom.value('sum(dbops_migration_throttled{task="mig"})') == 1

    rc = cli.stop(signal.SIGTERM)
    assert rc == 0, cli.err
    assert cli.err[-1] == ("serve: stopped by SIGTERM: monitor:sandbox done, m1 done, b1 done, "
                           "mig done, fo done"), cli.err
    h.sql("node1", "DROP DATABASE metrics_t")
    with pytest.raises(OSError):  # the endpoint stopped with serve
        scrape(port)


def test_a_removed_task_leaves_the_scrape(sandbox, tmp_path, serve):
    """The collector reads the engine at each scrape: a relay removed by a
    reload has no series at the next one (nothing stale)."""
    h = sandbox
    state, relay_dir = tmp_path / "state", tmp_path / "relay"
    cfg = tmp_path / "serve.toml"
    base = cluster_part(h, state)
    cfg.write_text(base + relay_task("m2", relay_dir, 5403))
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        port = free_port()
        cli = serve(cfg, notify, "--metrics-listen", f"127.0.0.1:{port}")
        notify.wait("READY=1")
        wait_for(lambda: sample(scrape(port)[1], "dbops_relay_received_bytes_total", task="m2"),
                 timeout=60, what="m2's bytes in the scrape")
        cfg.write_text(base)
        reload(cli, notify)
        text = scrape(port)[1]
        assert 'task="m2"' not in text, text
        assert sample(text, "dbops_host_up", host="node1") == 1.0, text
        assert cli.stop(signal.SIGTERM) == 0, cli.err
    finally:
        notify.close()


@pytest.mark.parametrize("value, says", [
    ("9108", "give HOST:PORT"),
    ("127.0.0.1:0", "give HOST:PORT"),
    ("127.0.0.1:http", "give HOST:PORT"),
    ("no-such-host.invalid:9108", "cannot listen there"),
    ("busy", "cannot listen there (Address already in use)"),
])
def test_bad_metrics_listen_is_one_line_and_creates_nothing(tmp_path, value, says):
    """Refused before the engine starts: one line naming the flag, exit 2,
    no state directory (the config's servers are never asked)."""
    state = tmp_path / "state"
    cfg = tmp_path / "serve.toml"
    cfg.write_text(f'state_dir = "{state}"\n[clusters.c.hosts.a]\nhost = "127.0.0.1"\nport = 1\n'
                   'user = "u"\npassword = "p"\n')
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        if value == "busy":
            value = f"127.0.0.1:{busy.getsockname()[1]}"
        r = subprocess.run([sys.executable, "-m", "console", "serve", "--config", str(cfg),
                            "--metrics-listen", value], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbops-console: --metrics-listen "), r.stderr
    assert says in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not state.exists()
