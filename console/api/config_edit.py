"""Declare and remove tasks in the config file, keeping everything else of
it as written (comments, order, spacing): the text of one ``[tasks.NAME]``
table (with its sub-tables) is replaced, appended or cut out, the whole
new text is checked by the config parser (the registry's declarations:
every problem named), and only then written (temp file, fsync, rename,
the file's mode kept).  Nothing is written when a problem is found.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from console.config import ConfigError, parse_config
from console.errors import UserError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


class DeclarationError(UserError):
    """A declaration the config refuses: every problem, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def toml_key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise DeclarationError([f"value {v!r}: only strings, numbers, booleans and lists of them"])


def _header_path(line: str) -> list[str] | None:
    """The dotted key of a table header line (quotes removed), else None."""
    m = _HEADER.match(line)
    if not m:
        return None
    try:  # let TOML itself split the dotted key
        data = tomllib.loads(f"[{m.group(1)}]\n")
    except tomllib.TOMLDecodeError:
        return None
    path = []
    while isinstance(data, dict) and len(data) == 1:
        k = next(iter(data))
        path.append(k)
        data = data[k]
    return path


def _block(lines: list[str], name: str) -> tuple[int, int] | None:
    """[start, end) of the lines of ``[tasks.NAME]`` and its sub-tables;
    comment and blank lines just before the next table stay with it."""
    start = None
    for i, line in enumerate(lines):
        path = _header_path(line)
        if path is None:
            continue
        ours = path[:2] == ["tasks", name]
        if start is None and ours:
            start = i
        elif start is not None and not ours:
            end = i
            while end > start + 1 and (not lines[end - 1].strip()
                                       or lines[end - 1].lstrip().startswith("#")):
                end -= 1
            return start, end
    return (start, len(lines)) if start is not None else None


def task_text(name: str, kind: str, cluster: str | None, autostart: bool,
              options: dict[str, Any]) -> str:
    out = [f"[tasks.{toml_key(name)}]", f"kind = {toml_value(kind)}"]
    if cluster:
        out.append(f"cluster = {toml_value(cluster)}")
    if autostart:
        out.append("autostart = true")
    for k, v in options.items():
        if v is None:
            continue
        out.append(f"{toml_key(k)} = {toml_value(v)}")
    return "\n".join(out) + "\n"


def declared_text(text: str, name: str, block: str | None) -> str:
    """``text`` with ``[tasks.NAME]`` replaced by ``block`` (None: removed;
    appended when it was not there)."""
    lines = text.splitlines(keepends=True)
    span = _block(lines, name)
    if span is None:
        if block is None:
            return text
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + block
    a, b = span
    if block is None:  # the comment lines right above its header went with it
        while a > 0 and lines[a - 1].lstrip().startswith("#"):
            a -= 1
    new = [] if block is None else [block if b >= len(lines) else block + "\n"]
    out = "".join(lines[:a] + new + lines[b:])
    return out.rstrip("\n") + "\n" if block is None and b >= len(lines) else out


def check_text(text: str, path: Path) -> None:
    """Every problem of the config ``text`` (as ``config check`` says them)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DeclarationError([f"{path}: not valid TOML after the change: {e}"]) from None
    errors: list[ConfigError] = []
    parse_config(data, path, errors=errors)
    if errors:
        raise DeclarationError([str(e) for e in errors])


def write_config(path: Path, text: str) -> None:
    """Atomically: temp file beside it, fsync, rename; the mode kept."""
    mode = path.stat().st_mode & 0o777
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def declare_task(path: Path, name: str, kind: str, cluster: str | None = None,
                 autostart: bool = False, options: dict[str, Any] | None = None) -> str:
    """Write ``[tasks.NAME]`` into the config file (replacing its earlier
    declaration); returns the block written.  Refused (nothing written) with
    every problem the config parser finds."""
    if not name or "\n" in name:
        raise DeclarationError(["a task needs a name of one line"])
    block = task_text(name, kind, cluster, autostart, dict(options or {}))
    text = path.read_text()
    new = declared_text(text, name, block)
    check_text(new, path)
    write_config(path, new)
    return block


def remove_task(path: Path, name: str) -> bool:
    """Cut ``[tasks.NAME]`` out of the config file; False when it was not there."""
    text = path.read_text()
    new = declared_text(text, name, None)
    if new == text:
        return False
    check_text(new, path)
    write_config(path, new)
    return True
