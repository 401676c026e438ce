"""zstd compression.

Small objects (log segments, one every half second) are compressed and
decompressed in this process with the ``zstandard`` library: a ``zstd``
child per segment cost ~8.5 ms of process start each, in the backup, in
verify and in restore (``bench/zstd_segments.py`` measures both ways).  Big
streams (snapshots) go through ``Compressor``, which owns a multi-threaded
``zstd`` child reading our pipe (or another tool's output) and writing the
compressed stream to a file object.  Both write standard zstd frames: ``zstd
-dc`` reads every object, and ``decompress`` reads what the tool wrote.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from typing import BinaryIO

import zstandard

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
    """One zstd frame with a content checksum (as ``zstd -c`` writes)."""
    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)


def decompress(data: bytes) -> bytes:
    """Every frame of ``data``, which must end where its last frame ends: a
    truncated object is an error (the library would return a short result)."""
    dctx = zstandard.ZstdDecompressor()
    out: list[bytes] = []
    rest = data
    try:
        while True:
            frame = dctx.decompressobj()
            out.append(frame.decompress(rest))
            if not frame.eof:
                raise ZstdError(f"zstd: cannot decompress: truncated input ({len(data)} bytes)")
            rest = frame.unused_data
            if not rest:
                return b"".join(out)
    except zstandard.ZstdError as e:
        raise ZstdError(f"zstd: cannot decompress: {e}") from None


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
