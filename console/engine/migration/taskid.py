"""The id of a ``migrate`` run, which names its state directory
(``STATE_DIR/tasks/<id>``: checkpoint, ``--resume``).

The id was ``migrate-<db>.<table>`` with every other character made ``_``
when the directory was named, so ``my table`` and ``my_table`` (or ``a.b``
+ ``c`` and ``a`` + ``b.c``) shared a directory and a checkpoint.  Names of
plain characters keep that id; any other name gets a short hash of the
exact (database, table) pair appended."""

from __future__ import annotations

import hashlib
import re

_PLAIN = re.compile(r"[A-Za-z0-9_-]+\Z")
_OTHER = re.compile(r"[^A-Za-z0-9_-]")


def migration_task_id(database: str, table: str) -> str:
    if _PLAIN.match(database) and _PLAIN.match(table):
        return f"migrate-{database}.{table}"
    digest = hashlib.sha1(f"{database}\0{table}".encode()).hexdigest()[:10]
    return f"migrate-{_OTHER.sub('_', database)}.{_OTHER.sub('_', table)}-{digest}"
