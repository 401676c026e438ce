"""zstd compression through the ``zstd`` command-line tool (pipes, no library).

Small objects (log segments) go through ``compress``/``decompress``; big
streams (snapshots) through ``Compressor`` which owns a ``zstd`` child
process reading our pipe and writing the compressed stream to a file object.
A ``decompress`` child (a restore reads segments with it) dies with this
process (``console.children``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from typing import BinaryIO

from console.children import die_with_parent
from console.errors import UserError

LEVEL = 3


class ZstdError(UserError):
    pass


def binary() -> str:
    z = shutil.which("zstd")
    if not z:
        raise ZstdError("zstd not found; install it with: apt-get install -y zstd")
    return z


def compress(data: bytes, level: int = LEVEL) -> bytes:
    r = subprocess.run([binary(), "-q", f"-{level}", "-c"], input=data, capture_output=True)
    if r.returncode != 0:
        raise ZstdError(f"zstd failed: {r.stderr.decode(errors='replace').strip()[:200]}")
    return r.stdout


def decompress(data: bytes) -> bytes:
    r = subprocess.run([binary(), "-q", "-d", "-c"], input=data, capture_output=True,
                       preexec_fn=die_with_parent())
    if r.returncode != 0:
        raise ZstdError(f"zstd: cannot decompress: {r.stderr.decode(errors='replace').strip()[:200]}")
    return r.stdout


class Compressor:
    """``zstd -c`` writing into ``sink``; feed it with ``write`` or hand its
    ``stdin`` to another process.  ``close()`` waits and raises on failure."""

    def __init__(self, sink: BinaryIO, level: int = LEVEL, threads: int = 1):
        self.proc = subprocess.Popen([binary(), "-q", f"-{level}", f"-T{threads}", "-c"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.sink = sink
        self.bytes_out = 0
        self.sha = hashlib.sha256()
        self._err: BaseException | None = None
        self._pump = threading.Thread(target=self._copy, daemon=True)
        self._pump.start()

    def _copy(self) -> None:
        try:
            assert self.proc.stdout is not None
            while True:
                chunk = self.proc.stdout.read(1 << 20)
                if not chunk:
                    break
                self.sink.write(chunk)
                self.sha.update(chunk)
                self.bytes_out += len(chunk)
        except BaseException as e:  # noqa: BLE001 - reported by close()
            self._err = e

    @property
    def stdin(self):
        return self.proc.stdin

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        rc = self.proc.wait()
        self._pump.join()
        err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
        if self.proc.stderr:
            self.proc.stderr.close()
        if self._err is not None:
            raise ZstdError(f"writing the compressed stream failed: {self._err}")
        if rc != 0:
            raise ZstdError(f"zstd failed (exit {rc}): {err[:200]}")
