"""Which tables a DDL statement from the binlog changes (pure; unit tested).

The binlog apply aborts the migration on DDL that changes the original
table.  Matching any identifier equal to the table's name aborted healthy
migrations on ``ALTER EVENT t``, ``DROP TRIGGER t``, ``DROP TABLE other.t``
and on the ``DROP EVENT db.t`` MariaDB logs itself when an ``ON COMPLETION
NOT PRESERVE`` event named like the table expires; and a statement that
began with a comment was not seen as DDL at all.  Here the statement is
read as tokens (comments dropped, executable ``/*! ... */`` comments kept),
its object type must be TABLE (or the DATABASE the table lives in), and
each table name is qualified by its explicit ``db.`` or else by the Query
event's default database."""

from __future__ import annotations

import re

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


def ddl_targets(sql: str, default_db: str) -> tuple[list[Name], list[str]]:
    """(tables changed, databases dropped) by ``sql`` run with
    ``default_db`` as the session's database: ALTER TABLE, RENAME TABLE,
    DROP TABLE (not TEMPORARY), TRUNCATE, CREATE OR REPLACE TABLE, DROP
    DATABASE.  Anything else changes no table: ([], [])."""
    r = _Reader(tokens(sql), default_db or "")
    if r.accept("ALTER"):
        while r.accept("ONLINE") or r.accept("IGNORE"):
            pass
        if r.accept("TABLE"):
            r.accept("IF", "EXISTS")
            n = r.name()
            return ([n] if n else []), []
        return [], []
    if r.accept("RENAME"):
        if r.accept("TABLE") or r.accept("TABLES"):
            r.accept("IF", "EXISTS")
            return r.names(("TO",)), []
        return [], []
    if r.accept("TRUNCATE"):
        r.accept("TABLE")
        n = r.name()
        return ([n] if n else []), []
    if r.accept("DROP"):
        if r.accept("DATABASE") or r.accept("SCHEMA"):
            r.accept("IF", "EXISTS")
            db = r.ident()
            return [], ([db] if db else [])
        if r.accept("TEMPORARY"):
            return [], []
        if r.accept("TABLE") or r.accept("TABLES"):
            r.accept("IF", "EXISTS")
            return r.names(), []
        return [], []
    if r.accept("CREATE", "OR", "REPLACE"):
        if r.accept("TABLE"):
            n = r.name()
            return ([n] if n else []), []
    return [], []


def touches_table(sql: str, default_db: str, database: str, table: str, ghost: str) -> bool:
    """Is ``sql`` (a Query event run in ``default_db``) DDL that changes
    ``database.table``?  Statements that name the ghost are the
    migration's own (the cut-over's RENAME)."""
    tabs, dbs = ddl_targets(sql, default_db)
    db = database.lower()
    if (db, ghost.lower()) in tabs:
        return False
    return (db, table.lower()) in tabs or db in dbs
