"""Reading an ALTER statement: clauses, table renames, column renames and
drops.  Pure text handling (unit tested)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from console.errors import UserError


class AlterError(UserError):
    pass


_IDENT = r"(`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"


def unquote(name: str) -> str:
    name = name.strip()
    if name.startswith("`") and name.endswith("`"):
        return name[1:-1].replace("``", "`")
    return name


def split_clauses(text: str) -> list[str]:
    """Split on top-level commas (not inside parentheses or quotes)."""
    out, cur, depth, quote = [], [], 0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
            cur.append(ch)
        elif ch == "(":
            depth += 1
            cur.append(ch)
        elif ch == ")":
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    if quote or depth:
        raise AlterError("--alter has an unterminated quote or parenthesis")
    tail = "".join(cur).strip()
    if tail:
        out.append(tail)
    return [c for c in out if c]


@dataclass(frozen=True)
class AlterPlan:
    clauses: tuple[str, ...]        # clauses to run on the ghost (ALGORITHM/LOCK removed)
    renames: tuple[tuple[str, str], ...]   # (old, new) column renames
    drops: tuple[str, ...]          # dropped columns

    @property
    def sql(self) -> str:
        return ", ".join(self.clauses)


_PREFIX = re.compile(r"^\s*ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\s+" + _IDENT + r"(?:\s*\.\s*" + _IDENT + r")?\s+",
                     re.I)


def parse_alter(text: str) -> AlterPlan:
    text = (text or "").strip().rstrip(";").strip()
    if not text:
        raise AlterError("--alter is empty: give the ALTER clauses, e.g. --alter \"ADD COLUMN c INT\"")
    m = _PREFIX.match(text)
    if m:
        text = text[m.end():]
    clauses, renames, drops = [], [], []
    for c in split_clauses(text):
        up = c.upper()
        words = up.split()
        if re.match(r"^(ALGORITHM|LOCK)\s*=?", up):
            continue
        if words[0] == "RENAME" and (len(words) == 1 or words[1] not in ("COLUMN", "INDEX", "KEY")):
            raise AlterError("--alter renames the table; an online migration keeps the table name "
                             "(rename it separately after the migration)")
        if words[0] == "RENAME" and words[1] == "COLUMN":
            m2 = re.match(r"^RENAME\s+COLUMN\s+" + _IDENT + r"\s+TO\s+" + _IDENT + r"\s*$", c, re.I)
            if not m2:
                raise AlterError(f"cannot read column rename {c!r}: expected RENAME COLUMN a TO b")
            renames.append((unquote(m2.group(1)), unquote(m2.group(2))))
        elif words[0] == "CHANGE":
            m2 = re.match(r"^CHANGE\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?" + _IDENT + r"\s+" + _IDENT, c, re.I)
            if not m2:
                raise AlterError(f"cannot read {c!r}: expected CHANGE [COLUMN] old new type")
            old, new = unquote(m2.group(1)), unquote(m2.group(2))
            if old.lower() != new.lower():
                renames.append((old, new))
        elif words[0] == "DROP" and (len(words) > 1 and words[1] not in (
                "INDEX", "KEY", "PRIMARY", "FOREIGN", "CONSTRAINT", "CHECK", "PARTITION", "UNIQUE")):
            m2 = re.match(r"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?" + _IDENT, c, re.I)
            if m2:
                drops.append(unquote(m2.group(1)))
        clauses.append(c)
    if not clauses:
        raise AlterError("--alter has no clause besides ALGORITHM/LOCK")
    return AlterPlan(tuple(clauses), tuple(renames), tuple(drops))
