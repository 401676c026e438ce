"""How many connections copy the rows: ``--copy-threads``, or chosen from
the server when it is 0 (the default).

Parallel ``INSERT ... SELECT`` chunks only run in parallel when nothing
serializes them: a ghost with an AUTO_INCREMENT column takes the table's
AUTO-INC lock for the whole statement unless the server runs
``innodb_autoinc_lock_mode=2`` (interleaved; MySQL 8.0's default, MariaDB's
is 1), and the chunks then take turns anyway (``turns.py``).  Otherwise one
connection per server core, at most ``AUTO_MAX``: the copy is the server's
CPU work (our process only bounds chunks) and more threads than cores only
queue."""

from __future__ import annotations

import pymysql

ER_UNKNOWN_SYSTEM_VARIABLE = 1193

AUTO_MAX = 4


def serializes(autoinc_ghost: bool, lock_mode: int | None) -> bool:
    """Copy chunks wait for each other on the ghost's AUTO-INC lock."""
    return autoinc_ghost and lock_mode != 2


def choose(requested: int, cores: int | None, autoinc_ghost: bool, lock_mode: int | None) -> tuple[int, str]:
    """(threads, why): ``requested`` when set (> 0); else from the server."""
    if requested > 0:
        return requested, "--copy-threads"
    if serializes(autoinc_ghost, lock_mode):
        return 1, (f"chosen: the ghost's AUTO_INCREMENT column serializes chunks under "
                   f"innodb_autoinc_lock_mode={lock_mode}")
    if not cores:
        return 1, "chosen: the server's cores are unknown"
    n = max(1, min(AUTO_MAX, cores))
    return n, f"chosen: the server's {cores} core(s), at most {AUTO_MAX}"


def server_facts(conn) -> tuple[int | None, int | None]:
    """(cores, innodb_autoinc_lock_mode) as the server tells them.  MariaDB's
    ``thread_pool_size`` defaults to the number of CPUs; a server without it
    (MySQL) or one whose pool size was set by hand says nothing reliable
    about cores, and None is returned for what could not be read."""
    def one(sql):
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                row = cur.fetchone()
            return int(row[0]) if row and row[0] is not None else None
        except pymysql.err.OperationalError as e:
            if e.args and e.args[0] == ER_UNKNOWN_SYSTEM_VARIABLE:    # a variable this server lacks
                return None
            raise
    return one("SELECT @@global.thread_pool_size"), one("SELECT @@global.innodb_autoinc_lock_mode")
