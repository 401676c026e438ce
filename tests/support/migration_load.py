"""Concurrent write load for migration tests, with a model of the expected
content: every thread owns a disjoint part of the key space and records the
effect of each committed statement, so after the writers stop the table must
equal the model exactly (no lost and no phantom write)."""

from __future__ import annotations

import datetime as dt
import decimal
import random
import threading
from collections.abc import Callable

import pymysql


def norm(v):
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    return v


class Load:
    """``make_row(rng, key)`` -> dict of non-key columns; ``key_of(thread, n)`` -> key dict.

    Operations per step: insert a new key, update non-key columns, update the
    key (delete + new key in the model), delete."""

    def __init__(self, connect: Callable[[], pymysql.Connection], table: str,
                 key_cols: list[str], rows: dict[tuple, dict], *, threads: int,
                 owner: Callable[[tuple], int], new_key: Callable[[int, int], tuple],
                 make_row: Callable[[random.Random], dict], rate_sleep: float = 0.002):
        self.connect, self.table, self.key_cols = connect, table, key_cols
        self.model: dict[tuple, dict] = dict(rows)
        self.threads = threads
        self.owner, self.new_key, self.make_row = owner, new_key, make_row
        self.rate_sleep = rate_sleep
        self.errors: list[str] = []
        self.ops = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ts: list[threading.Thread] = []

    def start(self) -> Load:
        for t in range(self.threads):
            th = threading.Thread(target=self._run, args=(t,), daemon=True)
            th.start()
            self._ts.append(th)
        return self

    def stop(self) -> None:
        self._stop.set()
        for th in self._ts:
            th.join(30)

    def _where(self, key: tuple) -> tuple[str, list]:
        return " AND ".join(f"`{c}` = %s" for c in self.key_cols), list(key)

    def _run(self, t: int) -> None:
        rng = random.Random(1000 + t)
        conn = self.connect()
        with self._lock:    # the threads started before this one already write to the model
            mine = [k for k in self.model if self.owner(k) == t]
        counter = 0
        cur = conn.cursor()
        while not self._stop.is_set():
            x = rng.random()
            try:
                if x < 0.3 or not mine:
                    counter += 1
                    key = self.new_key(t, counter)
                    row = self.make_row(rng)
                    cols = self.key_cols + list(row)
                    cur.execute(f"INSERT INTO `{self.table}` ({', '.join(f'`{c}`' for c in cols)}) "
                                f"VALUES ({', '.join(['%s'] * len(cols))})", list(key) + list(row.values()))
                    with self._lock:
                        self.model[key] = {**dict(zip(self.key_cols, key, strict=True)), **row}
                    mine.append(key)
                elif x < 0.65:
                    key = rng.choice(mine)
                    row = self.make_row(rng)
                    w, p = self._where(key)
                    cur.execute(f"UPDATE `{self.table}` SET {', '.join(f'`{c}` = %s' for c in row)} "
                                f"WHERE {w}", list(row.values()) + p)
                    with self._lock:
                        self.model[key].update(row)
                elif x < 0.85:
                    key = rng.choice(mine)
                    counter += 1
                    nk = self.new_key(t, counter)
                    w, p = self._where(key)
                    sets = ", ".join(f"`{c}` = %s" for c in self.key_cols)
                    cur.execute(f"UPDATE `{self.table}` SET {sets} WHERE {w}", list(nk) + p)
                    with self._lock:
                        row = self.model.pop(key)
                        row.update(dict(zip(self.key_cols, nk, strict=True)))
                        self.model[nk] = row
                    mine.remove(key)
                    mine.append(nk)
                else:
                    key = rng.choice(mine)
                    w, p = self._where(key)
                    cur.execute(f"DELETE FROM `{self.table}` WHERE {w}", p)
                    with self._lock:
                        del self.model[key]
                    mine.remove(key)
                self.ops += 1
            except pymysql.MySQLError as e:
                self.errors.append(str(e))
                if len(self.errors) > 20:
                    return
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = self.connect()
                cur = conn.cursor()
            self._stop.wait(self.rate_sleep)
        conn.close()

    def expected(self, columns: list[str]) -> list[tuple]:
        return sorted((tuple(norm(r.get(c)) for c in columns) for r in self.model.values()), key=repr)


def table_rows(conn, table: str, columns: list[str]) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM `{table}`")
        return sorted((tuple(norm(v) for v in r) for r in cur.fetchall()), key=repr)
