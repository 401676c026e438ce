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
    adds: tuple[str, ...] = ()      # added columns

    @property
    def readded(self) -> frozenset[str]:
        """Columns (lower case) dropped and added again under the same name:
        new columns, whatever the old one held."""
        return frozenset(d.lower() for d in self.drops) & frozenset(a.lower() for a in self.adds)

    @property
    def sql(self) -> str:
        return ", ".join(self.clauses)


_PREFIX = re.compile(r"^\s*ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\s+" + _IDENT + r"(?:\s*\.\s*" + _IDENT + r")?\s+",
                     re.I)


# what follows ADD / DROP when the clause is not about a column
_NOT_COLUMNS = ("INDEX", "KEY", "PRIMARY", "FOREIGN", "CONSTRAINT", "CHECK", "PARTITION", "UNIQUE",
                "FULLTEXT", "SPATIAL", "PERIOD", "SYSTEM")


def added_columns(clause: str) -> list[str]:
    """Column names an ``ADD [COLUMN] [IF NOT EXISTS] name ...`` or
    ``ADD [COLUMN] (a ..., b ...)`` clause adds."""
    m = re.match(r"^ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?", clause, re.I)
    rest = clause[m.end():] if m else ""
    if rest.startswith("("):
        inner = rest[1:rest.rfind(")")] if ")" in rest else rest[1:]
        return [unquote(n.group(1)) for part in split_clauses(inner)
                if (n := re.match(_IDENT, part.strip()))]
    n = re.match(_IDENT, rest)
    return [unquote(n.group(1))] if n else []


def parse_alter(text: str) -> AlterPlan:
    text = (text or "").strip().rstrip(";").strip()
    if not text:
        raise AlterError("--alter is empty: give the ALTER clauses, e.g. --alter \"ADD COLUMN c INT\"")
    m = _PREFIX.match(text)
    if m:
        text = text[m.end():]
    clauses, renames, drops, adds = [], [], [], []
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
        elif words[0] == "ADD" and (len(words) > 1 and words[1] not in _NOT_COLUMNS):
            adds.extend(added_columns(c))
        elif words[0] == "DROP" and (len(words) > 1 and words[1] not in _NOT_COLUMNS):
            m2 = re.match(r"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?" + _IDENT, c, re.I)
            if m2:
                drops.append(unquote(m2.group(1)))
        clauses.append(c)
    if not clauses:
        raise AlterError("--alter has no clause besides ALGORITHM/LOCK")
    return AlterPlan(tuple(clauses), tuple(renames), tuple(drops), tuple(adds))
