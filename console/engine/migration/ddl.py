"""Which tables a DDL statement from the binlog changes (pure; unit tested).

The binlog apply aborts the migration on DDL whose effect the cut-over
would lose or that changes the migration's own tables: DDL on the original
table (ALTER, RENAME, DROP, TRUNCATE, CREATE OR REPLACE, and CREATE/DROP
INDEX ... ON it, CREATE TRIGGER ... ON it: those were missed), a foreign key
of another table created to reference it (CREATE TABLE / ALTER TABLE ...
REFERENCES it: it would follow the old table), and any DDL on the ghost,
the changelog or the old table by a session that is not the migration's
(``apply.py`` knows its own sessions).

Matching any identifier equal to the table's name aborted healthy
migrations on ``ALTER EVENT t``, ``DROP TRIGGER t``, ``DROP TABLE other.t``
and on the ``DROP EVENT db.t`` MariaDB logs itself when an ``ON COMPLETION
NOT PRESERVE`` event named like the table expires; and a statement that
began with a comment was not seen as DDL at all.  Here the statement is
read as tokens (comments dropped, executable ``/*! ... */`` comments kept),
its object type must be TABLE, INDEX or TRIGGER (or the DATABASE the table
lives in), and each table name is qualified by its explicit ``db.`` or
else by the Query event's default database (a foreign key's parent and a
trigger's table by the child's and the trigger's database)."""

from __future__ import annotations

import re
from typing import NamedTuple

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<exec>/\*M?!\d*)                 # executable comment: its content counts
  | (?P<comment>/\*.*?\*/|--(?:\s[^\n]*)?(?:\n|$)|\#[^\n]*)
  | (?P<endexec>\*/)
  | (?P<bq>`(?:[^`]|``)*`)
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<word>[A-Za-z0-9_$]+)
  | (?P<punct>.)
""", re.S | re.X)

Name = tuple[str, str]   # (database, table), lower case


def tokens(sql: str) -> list[tuple[str, str]]:
    """(kind, text): kind ``id`` for a backquoted identifier (unquoted),
    ``word`` (upper case) for a bare word, ``str``, ``punct``."""
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup
        text = m.group()
        if kind in ("ws", "comment", "exec", "endexec"):
            continue
        if kind == "bq":
            out.append(("id", text[1:-1].replace("``", "`")))
        elif kind == "word":
            out.append(("word", text.upper()))
        else:
            out.append((kind, text))
    return out


class _Reader:
    def __init__(self, toks: list[tuple[str, str]], default_db: str):
        self.toks, self.i, self.default_db = toks, 0, default_db

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else ("", "")

    def accept(self, *words: str) -> bool:
        """Consume the bare words ``words`` in sequence if they are next."""
        for k, w in enumerate(words):
            if self.peek(k) != ("word", w):
                return False
        self.i += len(words)
        return True

    def ident(self) -> str | None:
        kind, text = self.peek()
        if kind in ("id", "word"):
            self.i += 1
            return text.lower()
        return None

    def name(self) -> Name | None:
        first = self.ident()
        if first is None:
            return None
        if self.peek() == ("punct", "."):
            self.i += 1
            second = self.ident()
            return (first, second) if second is not None else None
        return (self.default_db.lower(), first)

    def names(self, sep_words: tuple[str, ...] = ()) -> list[Name]:
        """A comma-separated list of names (each optionally followed by
        ``TO name``, for RENAME)."""
        out = []
        while True:
            n = self.name()
            if n is None:
                return out
            out.append(n)
            for w in sep_words:
                if self.accept(w):
                    n2 = self.name()
                    if n2 is not None:
                        out.append(n2)
            if self.peek() != ("punct", ","):
                return out
            self.i += 1


class Targets(NamedTuple):
    """What a DDL statement does to which tables (database, table)."""
    changed: list[Name]        # ALTER, RENAME, DROP, TRUNCATE, CREATE OR REPLACE, CREATE/DROP INDEX
                               # ON, CREATE TRIGGER ON
    created: list[Name]        # CREATE TABLE (a no-op if the table exists and IF NOT EXISTS)
    referenced: list[Name]     # REFERENCES in CREATE/ALTER TABLE: a foreign key to the table
    dropped_dbs: list[str]     # DROP DATABASE


_NONE = Targets([], [], [], [])


def ddl_targets(sql: str, default_db: str) -> Targets:
    """The tables ``sql``, run with ``default_db`` as the session's
    database, changes, creates or makes a foreign key point to.  Anything
    that is no DDL on a table (DML, events, views, routines, DROP TRIGGER,
    temporary tables) gives none."""
    r = _Reader(tokens(sql), default_db or "")
    if r.accept("ALTER"):
        while r.accept("ONLINE") or r.accept("IGNORE"):
            pass
        if r.accept("TABLE"):
            r.accept("IF", "EXISTS")
            n = r.name()
            if n is None:
                return _NONE
            return Targets([n, *_renamed_to(r, n[0])], [], _references(r, n[0]), [])
        return _NONE
    if r.accept("RENAME"):
        if r.accept("TABLE") or r.accept("TABLES"):
            r.accept("IF", "EXISTS")
            return Targets(r.names(("TO",)), [], [], [])
        return _NONE
    if r.accept("TRUNCATE"):
        r.accept("TABLE")
        n = r.name()
        return Targets([n] if n else [], [], [], [])
    if r.accept("DROP"):
        if r.accept("DATABASE") or r.accept("SCHEMA"):
            r.accept("IF", "EXISTS")
            db = r.ident()
            return Targets([], [], [], [db] if db else [])
        if r.accept("TEMPORARY"):
            return _NONE
        if r.accept("TABLE") or r.accept("TABLES"):
            r.accept("IF", "EXISTS")
            return Targets(r.names(), [], [], [])
        while r.accept("ONLINE") or r.accept("OFFLINE"):
            pass
        if r.accept("INDEX"):
            return Targets(_on_table(r, None), [], [], [])
        return _NONE
    if r.accept("CREATE"):
        replace = r.accept("OR", "REPLACE")
        if r.accept("DEFINER"):
            _skip_user(r)
        if r.accept("TEMPORARY"):
            return _NONE
        if r.accept("TABLE"):
            r.accept("IF", "NOT", "EXISTS")
            n = r.name()
            if n is None:
                return _NONE
            refs = _references(r, n[0])
            return Targets([n], [], refs, []) if replace else Targets([], [n], refs, [])
        while any(r.accept(w) for w in ("ONLINE", "OFFLINE", "UNIQUE", "FULLTEXT", "SPATIAL")):
            pass
        if r.accept("INDEX"):
            return Targets(_on_table(r, None), [], [], [])
        if r.accept("TRIGGER"):
            r.accept("IF", "NOT", "EXISTS")
            trigger = r.name()
            # the table lives in the trigger's database unless it is qualified
            return Targets(_on_table(r, trigger[0] if trigger else None), [], [], [])
    return _NONE


def _skip_user(r: _Reader) -> None:
    """``DEFINER = user`` (``'u'@'h'``, `` `u`@`h` ``, CURRENT_USER[()], a role)."""
    def part() -> None:
        if r.peek()[0] in ("id", "word", "str"):
            r.i += 1

    if r.peek() == ("punct", "="):
        r.i += 1
    part()
    if r.peek() == ("punct", "@"):
        r.i += 1
        part()
    if r.peek() == ("punct", "(") and r.peek(1) == ("punct", ")"):
        r.i += 2


def _on_table(r: _Reader, db: str | None) -> list[Name]:
    """The table after the next bare ``ON`` (CREATE INDEX / DROP INDEX /
    CREATE TRIGGER), qualified by ``db`` (else the default database)."""
    while r.peek()[0]:
        if r.accept("ON"):
            n = r.name()
            if n is None:
                return []
            qualified = r.toks[r.i - 2] == ("punct", ".") if r.i >= 2 else False
            return [n if qualified or db is None else (db, n[1])]
        r.i += 1
    return []


def _references(r: _Reader, db: str) -> list[Name]:
    """Every ``REFERENCES name`` in the rest of a CREATE/ALTER TABLE: the
    parent of a foreign key, in the child table's database ``db`` unless
    qualified (InnoDB resolves it there)."""
    out = []
    while r.peek()[0]:
        if r.accept("REFERENCES"):
            start = r.i
            n = r.name()
            if n is not None:
                qualified = r.i - start == 3
                out.append(n if qualified else (db, n[1]))
            continue
        r.i += 1
    return out


def _renamed_to(r: _Reader, db: str) -> list[Name]:
    """``ALTER TABLE x ... RENAME [TO|AS] y``: y (not RENAME COLUMN/INDEX/KEY);
    the reader is left where it was."""
    at, out = r.i, []
    while r.peek()[0]:
        if r.accept("RENAME"):
            if r.peek() in (("word", "COLUMN"), ("word", "INDEX"), ("word", "KEY")):
                continue
            r.accept("TO") or r.accept("AS")
            start = r.i
            n = r.name()
            if n is not None:
                out.append(n if r.i - start == 3 else (db, n[1]))
            continue
        r.i += 1
    r.i = at
    return out


def ddl_conflict(sql: str, default_db: str, database: str, table: str,
                 own: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """Why ``sql`` (a Query event run in ``default_db``, by a session that
    is not the migration's own) cannot go on beside a migration of
    ``database.table`` whose own tables are ``own`` (ghost, changelog,
    old): (what it is, what it would do), or None when it can."""
    tg = ddl_targets(sql, default_db)
    db = database.lower()
    orig = (db, table.lower())
    if db in tg.dropped_dbs or orig in tg.changed:
        return f"DDL on {database}.{table}", "the cut-over would lose its effect"
    if orig in tg.referenced:
        return (f"a foreign key referencing {database}.{table}",
                "it would point at the old table after the cut-over")
    for name in own:
        if (db, name.lower()) in (*tg.changed, *tg.created, *tg.referenced):
            return (f"DDL on the migration's own table {database}.{name}",
                    "the migration's tables are its own")
    return None
