"""A password that never prints (rule 5 of the house: secrets never leave memory)."""

from __future__ import annotations

import os
from pathlib import Path


class Secret:
    """A password that never prints: ``repr``/``str`` show ``***``.

    The value is read lazily from its source each time ``reveal()`` is
    called, so rotating a password file needs no restart.
    """

    __slots__ = ("_value", "_file", "_env", "source")

    def __init__(self, value: str | None = None, *, file: str | None = None, env: str | None = None):
        self._value, self._file, self._env = value, file, env
        self.source = (f"file {file}" if file else f"env ${env}" if env else
                       "inline" if value is not None else "none")

    def reveal(self) -> str:
        if self._value is not None:
            return self._value
        if self._file:  # the first line (a trailing newline is not part of it)
            return Path(self._file).read_text().split("\n", 1)[0].rstrip("\r")
        if self._env:
            return os.environ.get(self._env, "")
        return ""

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.source == other.source and self._value == other._value

    def __hash__(self) -> int:
        return hash(self.source)
