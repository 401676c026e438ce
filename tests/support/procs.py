"""Processes seen through /proc, for tests that check what a command left
running: a pid's state, its children (by name or all), its descendants."""

from __future__ import annotations

from pathlib import Path


def _stat(pid: int | str) -> tuple[str, str, int] | None:
    """(command name, state letter, parent pid) of a process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    rest = stat[stat.rindex(")") + 2:].split()
    return name, rest[0], int(rest[1])


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    st = _stat(pid)
    return st is not None and st[1] not in "ZX"


def parents() -> dict[int, tuple[int, str]]:
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (st := _stat(d.name)) is not None:
            out[int(d.name)] = (st[2], st[0])
    return out


def children_of(pid: int, comm: str | None = None) -> list[int]:
    """The processes whose parent is ``pid`` (named ``comm`` when given)."""
    return [p for p, (pp, name) in parents().items() if pp == pid and comm in (None, name)]


def descendants(pid: int) -> list[int]:
    tree = parents()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, (pp, _) in tree.items() if pp == p]
        out += kids
        todo += kids
    return out
