"""``migrate --execute`` beside a serving engine hands the run to the
engine (real sandbox, ``serve`` and ``migrate`` as subprocesses): it runs
there after the command's terminal goes (SIGHUP), a second ``migrate`` of
the table is refused while it runs, writes made meanwhile are in the
result; Ctrl-C stops it resumably and ``--resume --execute`` hands it over
again; a refused inspection creates nothing; the hand-over endpoint
refuses TCP (it carries the password) and bad bodies."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from console.api.client import ApiError
from tests.integration.migration_helpers import DB, columns, with_databases
from tests.integration.migration_helpers import connect as db
from tests.support.backup_helpers import wait_for
from tests.support.foreground import Cli
from tests.support.serving import cluster_part, start_serving

pytestmark = pytest.mark.integration

TABLE = "handed"
ROWS = 20000
TASK = f"migrate-{DB}.{TABLE}"


def argv(sb, state, flag, *more: str) -> list[str]:
    return ["migrate", "--host", "127.0.0.1", "--port", str(sb.primary_port), "--user", "dbops",
            "--password-file", str(sb.sb.secret_path("dbops")), "--database", DB, "--table", TABLE,
            "--alter", "ADD COLUMN z INT NOT NULL DEFAULT 7", "--execute", "--state-dir", str(state),
            "--status-interval", "0.5", "--chunk-size", "500",
            "--postpone-cut-over-flag-file", str(flag), *more]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True,
                          timeout=300)


def make_table(sb) -> None:
    c = db(with_databases(sb))
    with c.cursor() as cur:
        for t in (TABLE, f"{TABLE}_gho", f"{TABLE}_ghc", f"{TABLE}_del"):
            cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, v INT)")
        cur.execute(f"INSERT INTO {TABLE} SELECT seq, seq FROM seq_1_to_{ROWS}")
    c.close()


def table_rows(sb) -> list[tuple]:
    c = db(sb)
    with c.cursor() as cur:
        cur.execute(f"SELECT id, v, z FROM {TABLE} ORDER BY id")
        out = list(cur.fetchall())
    c.close()
    return out


def test_migrate_is_handed_to_the_engine_and_outlives_its_terminal(sandbox, tmp_path, serve):
    make_table(sandbox)
    state = tmp_path / "state"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(cluster_part(sandbox, state))
    proc, client = start_serving(serve, cfg, state)
    flag = tmp_path / "postpone.flag"
    flag.touch()

    cli = Cli(*argv(sandbox, state, flag))
    wait_for(lambda: any(f"{DB}.{TABLE} postponed:" in ln for ln in cli.err)
             or cli.p.poll() is not None, timeout=180, what="the postponed cut-over")
    assert any("handed to the engine serving" in ln for ln in cli.err), "\n".join(cli.err)
    assert cli.stop(signal.SIGHUP) == 129
    assert any(f"{TASK} keeps running in the engine" in ln for ln in cli.err), "\n".join(cli.err)
    assert client.task(TASK)["state"] == "running"      # the terminal went, the migration did not

    c = db(sandbox)
    with c.cursor() as cur:
        for i in range(1, 101):
            cur.execute(f"INSERT INTO {TABLE} (id, v) VALUES ({ROWS + i}, {i})")
        cur.execute(f"UPDATE {TABLE} SET v = -v WHERE id <= 50")
        cur.execute(f"DELETE FROM {TABLE} WHERE id BETWEEN 100 AND 109")
    c.close()

    again = run(*argv(sandbox, state, flag))        # the same table while the engine runs it
    assert again.returncode == 2, again.stderr
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "already runs" in lines[0] and TASK in lines[0], again.stderr

    flag.unlink()                                    # the engine's run cuts over
    wait_for(lambda: client.task(TASK)["state"] in ("done", "failed"), timeout=300,
             what="the engine's migration to end")
    t = client.task(TASK)
    assert (t["state"], t["phase"]) == ("done", "complete"), t["last_error"]
    assert "z" in columns(db(sandbox), TABLE)
    rows = table_rows(sandbox)
    assert len(rows) == ROWS + 100 - 10
    assert all(z == 7 for _, _, z in rows)
    want = {i: (-i if i <= 50 else i) for i in range(1, ROWS + 1) if not 100 <= i <= 109}
    want.update({ROWS + i: i for i in range(1, 101)})
    assert {i: v for i, v, _ in rows} == want
    audit = [json.loads(x) for x in (state / "audit.log").read_text().splitlines()]
    assert any(a["action"] == "start" and a["target"] == TASK and a["actor"].startswith("cli:")
               for a in audit), audit[-10:]
    assert "password" not in (state / "audit.log").read_text().lower()
    assert proc.stop(signal.SIGTERM) == 0, "\n".join(proc.err)


def test_ctrl_c_stops_the_engines_run_and_resume_hands_it_over_again(sandbox, tmp_path, serve):
    make_table(sandbox)
    state = tmp_path / "state"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(cluster_part(sandbox, state))
    proc, client = start_serving(serve, cfg, state)
    flag = tmp_path / "postpone.flag"
    flag.touch()

    # a refused inspection: one line, exit 2, nothing made in the state directory
    bad = run(*[a if a != TABLE else "no_such_table" for a in argv(sandbox, state, flag)])
    assert bad.returncode == 2, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "no_such_table" in bad.stderr, bad.stderr
    assert not (state / "tasks").exists() or not any((state / "tasks").iterdir())

    cli = Cli(*argv(sandbox, state, flag))
    wait_for(lambda: any(f"{DB}.{TABLE} postponed:" in ln for ln in cli.err)
             or cli.p.poll() is not None, timeout=180, what="the postponed cut-over")
    assert cli.stop(signal.SIGINT) == 130
    assert cli.err[-1].endswith("interrupted: ghost table and checkpoint kept; rerun with "
                                "--resume --execute"), "\n".join(cli.err)
    assert client.task(TASK)["state"] == "done" and client.task(TASK)["phase"] != "complete"
    assert "z" not in columns(db(sandbox), TABLE)

    flag.unlink()
    done = run(*argv(sandbox, state, flag, "--resume"))
    assert done.returncode == 0, done.stderr
    assert "handed to the engine serving" in done.stderr
    assert f"migration of {DB}.{TABLE} complete in" in done.stderr.strip().splitlines()[-1]
    assert "z" in columns(db(sandbox), TABLE) and len(table_rows(sandbox)) == ROWS

    # the hand-over endpoint: bad bodies are refused with nothing started
    base = {"host": "127.0.0.1", "port": sandbox.primary_port, "user": "dbops", "password": "x",
            "options": {"database": DB, "table": TABLE, "alter": "ADD COLUMN y INT"}}
    for change, words in (({"port": 0}, "`port`"), ({"host": ""}, "`host`"),
                          ({"password": None}, "`password`"), ({"options": []}, "`options`"),
                          ({"options": {**base["options"], "chunk_sise": 5}}, "chunk_sise"),
                          ({"options": {**base["options"], "chunk_size": 5}}, "chunk_size"),
                          ({"options": {**base["options"], "execute": False}}, "dry run")):
        with pytest.raises(ApiError) as e:
            client.post("/api/v1/migrations", {**base, **change})
        assert e.value.status == 400 and words in str(e.value), (change, str(e.value))
    assert client.task(TASK)["phase"] == "complete"
    assert proc.stop(signal.SIGTERM) == 0, "\n".join(proc.err)
