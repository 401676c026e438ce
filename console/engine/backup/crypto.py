"""Client-side encryption of backup objects: AES-256-GCM in chunks.

Segments and snapshot data are encrypted before they reach the storage
(manifests and ``checkpoint.json`` stay readable: GTIDs, positions, times,
sizes and checksums, no row data).  The format of an encrypted object::

    header   b"DBOPSENC" | version (1) | len(key id) (1) | key id (ASCII)
             | salt (32) | chunk size (4, big endian)
    chunks   AES-256-GCM(chunk i) = ciphertext | 16-byte tag, each of
             ``chunk size`` plaintext bytes but the last (0..chunk size)

* The object's own key is HKDF-SHA256(master key, salt, "dbops-console
  backup v1" + key id): a fresh random salt per object, so chunk nonces can
  simply count: 11 bytes of the chunk number, then 1 for the last chunk and
  0 for the others (a stream cut at a chunk boundary fails, as its new last
  chunk was not sealed as the last; so does anything appended).
* Every chunk's associated data is the header plus the object's name in the
  storage: a changed byte anywhere, a swapped or reordered chunk, a cut,
  or an object copied to another name fails authentication.
* The key id (``console.secret.key_id``) is in the header and in every
  manifest; a restore without the key, or with another key, says which id it
  needs before it starts.
* It streams: a snapshot is encrypted while it is written and decrypted
  while it is read, one chunk (1 MiB) at a time.

``CryptStorage`` wraps any ``Storage``: with a key it encrypts every object
but the ``.json`` ones; with or without a key it reads plain objects as
they are and encrypted ones only with the right key.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from console.engine.backup.storage import Storage, StorageError
from console.secret import key_id as key_id_of

MAGIC = b"DBOPSENC"
VERSION = 1
SALT = 32
TAG = 16
CHUNK = 1 << 20
_INFO = b"dbops-console backup v1"


class CryptoError(StorageError):
    """An encrypted object that cannot be read: changed, cut, or another key."""


def _object_key(master: bytes, salt: bytes, kid: str) -> AESGCM:
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO + kid.encode()).derive(master)
    return AESGCM(k)


def _nonce(i: int, last: bool) -> bytes:
    return i.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def header(kid: str, salt: bytes, chunk: int = CHUNK) -> bytes:
    k = kid.encode()
    return MAGIC + bytes([VERSION, len(k)]) + k + salt + struct.pack(">I", chunk)


def parse_header(f: BinaryIO, name: str) -> tuple[bytes, str, bytes, int] | None:
    """(header bytes, key id, salt, chunk size) of an encrypted object read
    from ``f``, or None when it does not start with the magic (then the
    bytes read are lost: callers peek first)."""
    head = _read_exact(f, len(MAGIC) + 2)
    if head[:len(MAGIC)] != MAGIC:
        return None
    if len(head) < len(MAGIC) + 2:
        raise CryptoError(f"backup object {name}: truncated (cut inside its encryption header)")
    if head[len(MAGIC)] != VERSION:
        raise CryptoError(f"backup object {name}: unknown encryption format {head[len(MAGIC)]}")
    rest = _read_exact(f, head[-1] + SALT + 4)
    if len(rest) < head[-1] + SALT + 4:
        raise CryptoError(f"backup object {name}: truncated (cut inside its encryption header)")
    kid = rest[:head[-1]].decode("ascii", errors="replace")
    salt = rest[head[-1]:head[-1] + SALT]
    chunk = struct.unpack(">I", rest[-4:])[0]
    if not 0 < chunk <= 64 << 20:
        raise CryptoError(f"backup object {name}: bad chunk size in its encryption header")
    return head + rest, kid, salt, chunk


def _read_exact(f: BinaryIO, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


class EncryptingWriter(io.RawIOBase):
    """Encrypts what is written into ``sink`` chunk by chunk; ``finish()``
    seals the last chunk (without it the object is incomplete and fails)."""

    def __init__(self, sink: BinaryIO, master: bytes, name: str, chunk: int = CHUNK):
        super().__init__()
        self.kid = key_id_of(master)
        salt = os.urandom(SALT)
        self._head = header(self.kid, salt, chunk)
        self._aad = self._head + name.encode()
        self._gcm = _object_key(master, salt, self.kid)
        self._sink, self._chunk = sink, chunk
        self._buf = bytearray()
        self._i = 0
        self.bytes_out = len(self._head)
        sink.write(self._head)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buf += data
        while len(self._buf) > self._chunk:      # the last chunk waits for finish()
            self._emit(bytes(self._buf[:self._chunk]), last=False)
            del self._buf[:self._chunk]
        return len(data)

    def _emit(self, pt: bytes, last: bool) -> None:
        ct = self._gcm.encrypt(_nonce(self._i, last), pt, self._aad)
        self._sink.write(ct)
        self.bytes_out += len(ct)
        self._i += 1

    def finish(self) -> None:
        self._emit(bytes(self._buf), last=True)
        self._buf = bytearray()


class DecryptingReader(io.RawIOBase):
    """The plaintext of an encrypted object read from ``src`` (its header
    already parsed); raises CryptoError, naming the object, on any change."""

    def __init__(self, src: BinaryIO, master: bytes, name: str, head: bytes, kid: str,
                 salt: bytes, chunk: int):
        super().__init__()
        self._src, self._name = src, name
        self._aad = head + name.encode()
        self._gcm = _object_key(master, salt, kid)
        self._block = chunk + TAG
        self._next = _read_exact(src, self._block)
        self._buf = b""
        self._i = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        cur = self._next
        if len(cur) == self._block:
            self._next = _read_exact(self._src, self._block)
            last = not self._next
        else:
            self._next, last = b"", True
        if len(cur) < TAG:
            raise CryptoError(f"backup object {self._name}: truncated (its last encrypted "
                              f"chunk is cut)")
        try:
            self._buf = self._gcm.decrypt(_nonce(self._i, last), cur, self._aad)
        except InvalidTag:
            raise CryptoError(f"backup object {self._name}: authentication failed in chunk "
                              f"{self._i}: the object was changed or truncated") from None
        self._i += 1
        self._done = last

    def read(self, n: int = -1) -> bytes:
        out = []
        while n < 0 or sum(map(len, out)) < n:
            if not self._buf:
                if self._done:
                    break
                self._fill()
                continue
            want = len(self._buf) if n < 0 else n - sum(map(len, out))
            out.append(self._buf[:want])
            self._buf = self._buf[want:]
        return b"".join(out)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def encrypt(master: bytes, name: str, data: bytes, chunk: int = CHUNK) -> bytes:
    out = io.BytesIO()
    w = EncryptingWriter(out, master, name, chunk)
    w.write(data)
    w.finish()
    return out.getvalue()


def decrypt(master: bytes | None, name: str, blob: bytes, mine: str = "") -> tuple[bytes, str]:
    """(plaintext, key id) of ``blob`` (key id "" for a plain object);
    ``mine``: the master key's id, when the caller knows it."""
    src = io.BytesIO(blob)
    h = parse_header(src, name)
    if h is None:
        return blob, ""
    head, kid, salt, chunk = h
    _check_key(master, kid, name, mine)
    assert master is not None
    return DecryptingReader(src, master, name, head, kid, salt, chunk).read(), kid


def _check_key(master: bytes | None, kid: str, name: str, mine: str = "") -> None:
    if master is None:
        raise CryptoError(f"backup object {name} is encrypted with key id {kid} and no "
                          f"encryption key is configured: set the backup task's "
                          f"encryption_key_file or encryption_key_env")
    mine = mine or key_id_of(master)
    if kid != mine:
        raise CryptoError(f"backup object {name} is encrypted with key id {kid}, but the "
                          f"configured key is {mine}: configure the key it was written with")


def needs_encryption(key: str) -> bool:
    """Data objects are encrypted; manifests and the checkpoint (JSON) are not."""
    return not key.endswith(".json")


class _Prefixed(io.RawIOBase):
    """``head`` then the rest of ``src`` (a plain object after the peek)."""

    def __init__(self, head: bytes, src: BinaryIO):
        super().__init__()
        self._head, self._src = head, src

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                out, self._head = self._head + self._src.read(), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._src.read(n)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class CryptStorage(Storage):
    """``inner`` with data objects encrypted under ``master`` (None: written
    plain; encrypted objects then cannot be read and say which key they need)."""

    def __init__(self, inner: Storage, master: bytes | None = None):
        self.inner = inner
        self.read_ahead = inner.read_ahead
        self.master = master
        self.key_id = key_id_of(master) if master else ""

    def __repr__(self) -> str:            # the key never prints
        return f"CryptStorage({self.inner.describe()}, key id {self.key_id or 'none'})"

    def put(self, key: str, data: bytes) -> None:
        if self.master is not None and needs_encryption(key):
            data = encrypt(self.master, key, data)
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        return self.get_sealed(key)[0]

    def get_sealed(self, key: str) -> tuple[bytes, str]:
        """(plaintext, the key id it was encrypted with, "" when plain)."""
        return decrypt(self.master, key, self.inner.get(key), self.key_id)

    def key_id_of(self, key: str) -> str:
        """The key id in the object's header ("" for a plain object)."""
        with self.inner.reader(key) as src:
            h = parse_header(src, key)
        return h[1] if h else ""

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        if self.master is None or not needs_encryption(key):
            with self.inner.writer(key) as f:
                yield f
            return
        with self.inner.writer(key) as sink:
            w = EncryptingWriter(sink, self.master, key)
            yield w  # type: ignore[misc]
            w.finish()

    @contextlib.contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        with self.inner.reader(key) as src:
            peek = _read_exact(src, len(MAGIC))
            if peek != MAGIC:
                yield _Prefixed(peek, src)  # type: ignore[misc]
                return
            h = parse_header(_Prefixed(peek, src), key)
            assert h is not None
            head, kid, salt, chunk = h
            _check_key(self.master, kid, key, self.key_id)
            assert self.master is not None
            yield DecryptingReader(src, self.master, key, head, kid, salt, chunk)  # type: ignore[misc]

    # ---- the rest is the inner storage's -------------------------------------------

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def clean_temp(self, prefix: str = "") -> int:
        return self.inner.clean_temp(prefix)

    def remove_empty_dirs(self, prefix: str) -> int:
        return self.inner.remove_empty_dirs(prefix)

    def remove_tree(self, prefix: str) -> None:
        self.inner.remove_tree(prefix)  # type: ignore[attr-defined]

    def lock(self, owner: str, refused=None):
        return self.inner.lock(owner, refused)  # type: ignore[attr-defined]

    def describe(self) -> str:
        return self.inner.describe()
