"""Binlog files on local disk: an appending writer and an event reader.

A file is the 4-byte magic ``\\xfebin`` followed by events exactly as the
upstream stored them, so ``mariadb-binlog FILE`` reads it.  The writer never
fsyncs on its own: the caller calls ``sync()`` before it publishes a
position (durable before visible).  It does start the writeback of every few
MB as it goes (``sync_file_range``, which does not wait): otherwise nothing
reaches the disk before the kernel's dirty threshold (gigabytes) or the next
fsync, and each fsync would write half a second of a bulk stream while the
reader waits.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from console.mysql.binlog import events as E

_KICK_BYTES = 8 << 20  # start the writeback of each 8 MB written


def _sync_file_range():
    """libc's ``sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE)``,
    or None where there is none (not Linux)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return lambda fd, off, n: fn(fd, off, n, 2)  # 2 = SYNC_FILE_RANGE_WRITE


_START_WRITEBACK = _sync_file_range()


class BinlogFileWriter:
    """Appends events to one binlog file, creating it with the magic."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o640)
        self._kicked = 0  # writeback started up to here
        self.offset = os.lseek(self.fd, 0, os.SEEK_END)
        if self.offset == 0:
            self._write(E.MAGIC)
        elif self.offset < 4:
            raise E.BinlogFormatError(f"{self.path}: shorter than the binlog magic")
        self.dirty = self.offset == 4

    def _write(self, data) -> None:
        mv = memoryview(data)
        while mv:
            n = os.pwrite(self.fd, mv, self.offset)
            self.offset += n
            mv = mv[n:]
        if _START_WRITEBACK is not None and self.offset - self._kicked >= _KICK_BYTES:
            _START_WRITEBACK(self.fd, self._kicked, self.offset - self._kicked)
            self._kicked = self.offset

    def write(self, data) -> None:
        if data:
            self._write(data)
            self.dirty = True

    def sync(self) -> None:
        if self.dirty:
            os.fsync(self.fd)
            self.dirty = False

    def truncate(self, offset: int) -> None:
        os.ftruncate(self.fd, offset)
        self.offset = offset
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read_events(path: str | os.PathLike, start: int = 4, end: int | None = None,
                verify: bool = True, chunk: int = 4 << 20) -> Iterator[tuple[int, bytes]]:
    """(offset, event bytes) for each complete event of a binlog file from
    ``start`` up to ``end`` (default: end of file).  A torn event at the end
    is not returned.  CRC32 is verified when the file's FDE says so."""
    with open(path, "rb") as f:
        head = f.read(4)
        if head != E.MAGIC:
            raise E.BinlogFormatError(f"{path}: not a binlog file (bad magic)")
        crc = True
        if start > 4:  # learn the checksum setting from the FDE
            hdr = f.read(E.HEADER_LEN)
            if len(hdr) == E.HEADER_LEN:
                h = E.parse_header(hdr)
                fde = hdr + f.read(h.size - E.HEADER_LEN)
                if h.type == E.FORMAT_DESCRIPTION and len(fde) == h.size:
                    crc = E.fde_checksum_alg(fde) == E.CHECKSUM_CRC32
        f.seek(start)
        off = start
        buf = b""
        limit = end
        while True:
            want = chunk if limit is None else min(chunk, limit - off - len(buf))
            data = f.read(want) if want > 0 else b""
            if data:
                buf = buf + data if buf else data
            p = 0
            n = len(buf)
            while n - p >= E.HEADER_LEN:
                size = int.from_bytes(buf[p + 9:p + 13], "little")
                if size < E.HEADER_LEN:
                    raise E.BinlogFormatError(f"{path}: bad event size {size} at {off + p}")
                if n - p < size:
                    break
                ev = buf[p:p + size]
                typ = ev[4]
                if typ == E.FORMAT_DESCRIPTION:
                    crc = E.fde_checksum_alg(ev) == E.CHECKSUM_CRC32
                if verify and crc and zlib.crc32(ev[:-4]) != int.from_bytes(ev[-4:], "little"):
                    raise E.BinlogFormatError(f"{path}: CRC32 mismatch in event at {off + p}")
                yield off + p, ev
                p += size
            off += p
            buf = buf[p:]
            if not data:
                return


def valid_prefix(path: str | os.PathLike, start: int = 4) -> int:
    """Length of the part of a binlog file made of complete, CRC-valid events."""
    last = start
    try:
        for off, ev in read_events(path, start):
            last = off + len(ev)
    except E.BinlogFormatError:
        pass
    return last
