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


# ---- encryption keys (backup encryption) ------------------------------------------

KEY_BYTES = 32


def parse_key(text: str) -> bytes:
    """A 256-bit key written as 64 hex digits or as base64 (first line of
    ``text``); raises ValueError (which never holds the text)."""
    import base64
    import binascii

    line = text.split("\n", 1)[0].strip()
    if not line:
        raise ValueError("is empty: write a 256-bit key as 64 hex digits or base64 "
                         "(e.g. `openssl rand -hex 32`)")
    if len(line) == 2 * KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in line):
        return bytes.fromhex(line)
    try:
        key = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ValueError("is not a 256-bit key: write 64 hex digits or the base64 of 32 bytes "
                         "(e.g. `openssl rand -hex 32`)")
    return key


def read_key(file: str | os.PathLike | None = None, env: str | None = None) -> bytes:
    """The key from a file (its first line) or an environment variable;
    ValueError with the reason (naming the file or variable, never the key)."""
    if file:
        try:
            text = Path(file).read_text()
        except OSError as e:
            raise ValueError(f"cannot read key file {file}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise ValueError(f"key file {file} is not text: write the key as hex or base64") from None
        try:
            return parse_key(text)
        except ValueError as e:
            raise ValueError(f"key file {file} {e}") from None
    if env:
        if env not in os.environ:
            raise ValueError(f"environment variable {env} is not set")
        try:
            return parse_key(os.environ[env])
        except ValueError as e:
            raise ValueError(f"environment variable {env} {e}") from None
    raise ValueError("no key source")


def key_id(key: bytes) -> str:
    """A public name of a key (in every manifest and object header): 16 hex
    digits of a SHA-256 over a label and the key; says nothing about it."""
    import hashlib

    return hashlib.sha256(b"dbops-console backup key id\0" + key).hexdigest()[:16]
