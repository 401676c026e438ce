"""What a DBA looks at on one host (the console's host drill-down): the
processlist, metadata-lock waits (who blocks whom: what stalls a
cut-over), the full replica status, global variables that differ from the
cluster's other hosts, an InnoDB summary and the counters behind QPS and
threads; and killing a query or a connection.

Each function opens its own short connection (``read_timeout`` a few
seconds) and returns plain JSON-able values: the API sends them as they
are; nothing here decides anything.  MariaDB names first
(``SHOW ALL SLAVES STATUS``, ``SHOW EXPLAIN FOR``); MySQL's where they
differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from console.errors import UserError
from console.mysql.connection import Endpoint, connect, query

READ_TIMEOUT = 5
WHAT = ("processlist", "locks", "replication", "variables", "status")

# the variables worth comparing across a cluster (the rest differ by nature:
# server_id, paths, hostnames, gtid positions, timestamps)
_VARIES_BY_HOST = re.compile(
    r"^(server_id|server_uuid|server_uid|hostname|report_.*|gtid_.*|.*tmpdir|log_basename|pid_file|socket|port|datadir|"
    r"log_bin_basename|log_bin_index|relay_log.*|general_log_file|slow_query_log_file|"
    r"log_error|timestamp|pseudo_thread_id|last_insert_id|insert_id|rand_seed.*|"
    r"wsrep_.*|version_.*|innodb_log_group_home_dir|tmpdir|.*_file|.*_path|"
    r"read_only|rpl_semi_sync_.*|last_gtid|.*_pos)$")


def _conn(ep: Endpoint):
    return connect(ep, read_timeout=READ_TIMEOUT, connect_timeout=3)


def _dicts(cur_rows: list, names: list[str]) -> list[dict]:
    return [dict(zip(names, r, strict=False)) for r in cur_rows]


def _query_dicts(c, sql: str, args: Iterable | None = None) -> list[dict]:
    with c.cursor() as cur:
        cur.execute(sql, args)
        names = [d[0] for d in cur.description or ()]
        return _dicts(list(cur.fetchall()), names)


def processlist(ep: Endpoint) -> list[dict]:
    """Every session but our own: id, user, host, db, command, time (s),
    state, info (the statement), and for a session in a transaction its
    age and rows locked."""
    c = _conn(ep)
    try:
        rows = _query_dicts(
            c, "SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.DB AS db, "
               "p.COMMAND AS command, p.TIME_MS / 1000 AS time, p.STATE AS state, "
               "p.INFO AS info, t.trx_started AS trx_started, t.trx_rows_locked AS rows_locked "
               "FROM information_schema.PROCESSLIST p LEFT JOIN information_schema.INNODB_TRX t "
               "ON t.trx_mysql_thread_id = p.ID WHERE p.ID <> CONNECTION_ID() ORDER BY p.TIME_MS DESC")
    finally:
        c.close()
    for r in rows:
        r["time"] = float(r["time"] or 0)
        r["trx_started"] = str(r["trx_started"]) if r["trx_started"] is not None else None
    return rows


def locks(ep: Endpoint) -> dict:
    """Metadata-lock waits: each waiting session, and who blocks it.  With
    MariaDB's ``metadata_lock_info`` plugin the holders are exact; without
    it, the sessions holding an open transaction or running longer than the
    waiter are the candidates (``how`` says which)."""
    c = _conn(ep)
    try:
        plist = _query_dicts(
            c, "SELECT ID AS id, USER AS user, DB AS db, COMMAND AS command, TIME_MS / 1000 AS time, "
               "STATE AS state, INFO AS info FROM information_schema.PROCESSLIST "
               "WHERE ID <> CONNECTION_ID()")
        trx = {r["id"]: r for r in _query_dicts(
            c, "SELECT trx_mysql_thread_id AS id, trx_started AS started FROM "
               "information_schema.INNODB_TRX")}
        try:
            held = _query_dicts(c, "SELECT THREAD_ID AS id, LOCK_MODE AS mode, TABLE_SCHEMA AS db, "
                                   "TABLE_NAME AS tbl FROM information_schema.METADATA_LOCK_INFO")
            how = "metadata_lock_info"
        except Exception:  # noqa: BLE001 - the plugin is not installed: infer
            held, how = [], "inferred (install the metadata_lock_info plugin for exact holders)"
    finally:
        c.close()
    waiting = [p for p in plist if (p["state"] or "").startswith("Waiting for") and "lock" in
               (p["state"] or "")]
    out = []
    for w in waiting:
        wt = float(w["time"] or 0)
        if held:
            tables = {(h["db"], h["tbl"]) for h in held if h["id"] == w["id"]}
            blockers = sorted({h["id"] for h in held if h["id"] != w["id"]
                               and (h["db"], h["tbl"]) in tables} or
                              {h["id"] for h in held if h["id"] != w["id"]})
        else:
            blockers = sorted(p["id"] for p in plist if p["id"] != w["id"] and p not in waiting
                              and (p["id"] in trx or float(p["time"] or 0) > wt)
                              and p["command"] != "Daemon" and p["command"] != "Binlog Dump")
        by_id = {p["id"]: p for p in plist}
        out.append({"waiting": w["id"], "state": w["state"], "time": wt, "info": w["info"],
                    "blocked_by": [{"id": b, "user": by_id.get(b, {}).get("user"),
                                    "time": float(by_id.get(b, {}).get("time") or 0),
                                    "in_transaction": b in trx,
                                    "info": by_id.get(b, {}).get("info")} for b in blockers]})
    return {"how": how, "waits": out}


def replication(ep: Endpoint) -> list[dict]:
    """The full replica status, one dict per channel (empty: not a replica)."""
    c = _conn(ep)
    try:
        try:
            rows = _query_dicts(c, "SHOW ALL SLAVES STATUS")
        except Exception:  # noqa: BLE001 - MySQL
            rows = _query_dicts(c, "SHOW REPLICA STATUS")
    finally:
        c.close()
    return [{k: (v if isinstance(v, (int, float, str)) or v is None else str(v))
             for k, v in r.items()} for r in rows]


def global_variables(ep: Endpoint) -> dict[str, str]:
    c = _conn(ep)
    try:
        with c.cursor() as cur:
            cur.execute("SHOW GLOBAL VARIABLES")
            return {k: str(v) for k, v in cur.fetchall()}
    finally:
        c.close()


def variable_differences(mine: dict[str, str], others: dict[str, dict[str, str]]) -> list[dict]:
    """The variables whose value here differs from another host's (those
    that differ by nature left out), each with every host's value."""
    out = []
    for name in sorted(mine):
        if _VARIES_BY_HOST.match(name):
            continue
        values = {h: v.get(name) for h, v in others.items()}
        if any(v != mine[name] for v in values.values()):
            out.append({"variable": name, "here": mine[name], "others": values})
    return out


_INNODB = {
    "history_list_length": re.compile(r"History list length (\d+)"),
    "log_sequence_number": re.compile(r"Log sequence number\s+(\d+)"),
    "pending_reads": re.compile(r"Pending normal aio reads:\s*(\d+)"),
    "buffer_pool_hit_rate": re.compile(r"Buffer pool hit rate (\d+ / \d+)"),
    "free_buffers": re.compile(r"Free buffers\s+(\d+)"),
    "database_pages": re.compile(r"Database pages\s+(\d+)"),
    "modified_pages": re.compile(r"Modified db pages\s+(\d+)"),
}

STATUS_COUNTERS = ("Questions", "Com_select", "Com_insert", "Com_update", "Com_delete",
                   "Threads_running", "Threads_connected", "Uptime", "Slow_queries",
                   "Innodb_row_lock_waits", "Innodb_buffer_pool_reads",
                   "Innodb_buffer_pool_read_requests")


def status(ep: Endpoint) -> dict[str, Any]:
    """The counters behind QPS and threads (the console turns two samples
    into rates) and an InnoDB summary parsed from SHOW ENGINE INNODB STATUS."""
    c = _conn(ep)
    try:
        with c.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS")
            st = {k: v for k, v in cur.fetchall() if k in STATUS_COUNTERS}
            cur.execute("SHOW ENGINE INNODB STATUS")
            text = cur.fetchone()[2]
    finally:
        c.close()
    innodb = {}
    for k, rx in _INNODB.items():
        m = rx.search(text or "")
        innodb[k] = (int(m.group(1)) if m.group(1).isdigit() else m.group(1)) if m else None
    return {"counters": {k: int(v) for k, v in st.items() if str(v).isdigit()}, "innodb": innodb}


def explain(ep: Endpoint, session: int) -> list[dict]:
    """The plan of a running statement (MariaDB's SHOW EXPLAIN FOR)."""
    c = _conn(ep)
    try:
        try:
            return _query_dicts(c, f"SHOW EXPLAIN FOR {int(session)}")
        except Exception as e:  # noqa: BLE001 - not running a statement any more
            raise UserError(f"no plan for session {session}: {e.args[-1] if e.args else e}") from None
    finally:
        c.close()


def kill(ep: Endpoint, session: int, *, query_only: bool) -> str:
    c = _conn(ep)
    try:
        try:
            query(c, f"KILL {'QUERY ' if query_only else ''}{int(session)}")
        except Exception as e:  # noqa: BLE001 - gone already, or not ours to kill
            raise UserError(f"kill {session}: {e.args[-1] if e.args else e}") from None
    finally:
        c.close()
    return f"killed {'the query of ' if query_only else ''}session {session} on {ep.label}"


def endpoint_of(cluster, host: str) -> Endpoint:
    """A host of the cluster by name or address (a discovered one by its
    HOST:PORT, with the cluster's credentials)."""
    h = cluster.host(host)
    if h is not None:
        return Endpoint.from_host(h)
    name, _, port = host.rpartition(":")
    if not name or not port.isdigit() or not cluster.hosts:
        raise UserError(f"no host {host!r} in cluster {cluster.name} (give a name of the config "
                        f"or HOST:PORT)")
    return Endpoint.from_host(cluster.hosts[0]).with_address(name, int(port))


def report(cluster, host: str, what: str, session: int | None = None) -> Any:
    """One part of the host drill-down (``WHAT`` or ``explain``)."""
    ep = endpoint_of(cluster, host)
    if what == "processlist":
        return processlist(ep)
    if what == "locks":
        return locks(ep)
    if what == "replication":
        return replication(ep)
    if what == "status":
        return status(ep)
    if what == "variables":
        mine = global_variables(ep)
        others = {}
        for h in cluster.hosts:
            if h.address != ep.address:
                try:
                    others[h.name] = global_variables(Endpoint.from_host(h))
                except Exception:  # noqa: BLE001 - an unreachable host is left out
                    continue
        return variable_differences(mine, others)
    if what == "explain":
        if session is None:
            raise UserError("explain needs the session id")
        return explain(ep, session)
    raise UserError(f"unknown host report {what!r}; one of: {', '.join((*WHAT, 'explain'))}")
