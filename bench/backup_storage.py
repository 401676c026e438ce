"""bench/backup_storage: backup storage backends, S3 vs local files,
client-side encryption on and off.

    python -m bench.backup_storage [--segments N] [--snapshot-mb M] [--rounds R] [--dir D]

For each of four stores (a local directory and an S3 bucket, each plain
and encrypted with AES-256-GCM) this measures, on the same data:

- segment publish rate: what the log backup does per segment (zstd in
  process, data object, manifest, then checkpoint.json; locally each one
  fsynced and renamed), ~50 KB raw segments of an OLTP-like shape;
- segment read rate: what a restore (and verify) does per segment (get,
  decrypt, decompress), by one reader and by the restore's number of
  readers (``read_ahead``: 2 on local files, 8 on S3);
- snapshot write and restore stream: an M MB snapshot object written
  through the storage writer (a multipart upload on S3) and streamed back
  through the reader, as a restore feeds it to ``zstd -d | mbstream``.

The S3 side is moto's standalone server (``moto[server]``, a Python HTTP
server started here as a child process on a free port and stopped by its
pid): its figures are those of that server on this machine, not of AWS or
MinIO.  Each figure is the median of R rounds (each on fresh prefixes),
the four stores interleaved within a round.  Everything it writes (the directory, the server's memory) is gone
when it ends.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from console.engine.backup import zstd
from console.engine.backup.catalog import Catalog, Checkpoint
from console.engine.backup.crypto import CryptStorage
from console.engine.backup.s3 import S3Storage
from console.engine.backup.segments import SegmentManifest, data_key, sha256
from console.engine.backup.storage import LocalStorage, Storage
from console.kinds.storage_url import parse

ACCESS, SECRET = "benchaccesskey", "bench-secret-key-not-real"


def oltp_segment(rng: random.Random) -> bytes:
    out = bytearray()
    while len(out) < 50_000:
        out += b"\x00\x00\x00\x00\x1e\x01\x00\x00\x00" + rng.randbytes(4)
        out += b"".join(rng.randrange(1 << 20).to_bytes(4, "little") for _ in range(6))
        out += rng.choice([b"alpha", b"beta", b"gamma", b"delta"]) * rng.randrange(1, 6)
    return bytes(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"moto server did not start (see {log})") from None
            time.sleep(0.1)


def publish_all(store: Storage, segs: list[bytes]) -> float:
    """Segments per second through the task's publish path."""
    cat = Catalog(store)
    t = time.perf_counter()
    for i, raw in enumerate(segs, 1):
        stored = zstd.compress(raw)
        m = SegmentManifest(seq=i, source="bench:3306", source_id="1", binlog_file="b.000001",
                            start_pos=4, end_pos=4 + len(raw), gtid_start=f"0-1-{i - 1}",
                            gtid_end=f"0-1-{i}", transactions=1, raw_bytes=len(raw),
                            stored_bytes=len(stored), sha256=sha256(stored), created=time.time(),
                            key_id=getattr(store, "key_id", ""))
        cat.publish_segment(stored, m)
        cat.save_checkpoint(Checkpoint(seq=i, gtid=m.gtid_end, updated=time.time()))
    return len(segs) / (time.perf_counter() - t)


def read_all(store: Storage, n: int, segs: list[bytes], threads: int = 1) -> tuple[float, float]:
    """(segments/s, raw MB/s) of get + decrypt + decompress, checked, by
    ``threads`` readers (a restore uses the storage's ``read_ahead``)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> int:
        raw = zstd.decompress(store.get(data_key(i)))
        if raw != segs[i - 1]:
            raise SystemExit(f"segment {i} read back differs")
        return len(raw)

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        total = sum(ex.map(one, range(1, n + 1)))
    dt = time.perf_counter() - t
    return n / dt, total / dt / 1e6


def snapshot_round(store: Storage, data: bytes) -> tuple[float, float]:
    """(write MB/s, stream-read MB/s) of one snapshot object."""
    key = "snapshots/bench/backup.xb.zst"
    t = time.perf_counter()
    with store.writer(key) as f:
        for i in range(0, len(data), 1 << 20):
            f.write(data[i:i + (1 << 20)])
    w = len(data) / (time.perf_counter() - t) / 1e6
    t = time.perf_counter()
    got = 0
    with store.reader(key) as f:
        while chunk := f.read(1 << 20):
            got += len(chunk)
    r = got / (time.perf_counter() - t) / 1e6
    if got != len(data):
        raise SystemExit(f"snapshot read back {got} of {len(data)} bytes")
    return w, r


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench.backup_storage")
    ap.add_argument("--segments", type=int, default=200)
    ap.add_argument("--snapshot-mb", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default="", help="where the local stores go (default: a temp dir)")
    args = ap.parse_args()
    rng = random.Random(7)
    segs = [oltp_segment(rng) for _ in range(args.segments)]
    snap = zstd.compress(rng.randbytes(args.snapshot_mb << 19) * 2)   # half random, compresses ~2x
    snap = (snap * (1 + (args.snapshot_mb << 20) // len(snap)))[:args.snapshot_mb << 20]
    key = os.urandom(32)
    work = Path(tempfile.mkdtemp(prefix="dbops-bench-store-", dir=args.dir or None))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", ACCESS)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", SECRET)
    proc, endpoint = start_moto(work / "moto.log")
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket="bench")
        stores = {
            "local": lambda name: LocalStorage(work / name),
            "s3": lambda name: S3Storage(parse(f"s3://bench/{name}"), endpoint=endpoint),
        }
        print(f"{args.segments} segments of ~{sum(map(len, segs)) // len(segs) // 1000} KB raw, "
              f"snapshot {args.snapshot_mb} MB; S3 = moto server at {endpoint}")
        print(f"{'store':6} {'encryption':10} {'publish seg/s':>13} {'read seg/s':>10} "
              f"{'read MB/s':>9} {'restore-read MB/s':>17} {'snap write MB/s':>15} "
              f"{'snap read MB/s':>14}")
        results: dict[tuple[str, bool], list[tuple[float, ...]]] = {}
        for r in range(args.rounds):
            for kind, make in stores.items():
                for enc in (False, True):
                    store = CryptStorage(make(f"{kind}-{'enc' if enc else 'plain'}-{r}"),
                                         key if enc else None)
                    pub = publish_all(store, segs)
                    rd, mb = read_all(store, len(segs), segs)
                    _, pmb = read_all(store, len(segs), segs, threads=store.read_ahead)
                    sw, sr = snapshot_round(store, snap)
                    results.setdefault((kind, enc), []).append((pub, rd, mb, pmb, sw, sr))
        for (kind, enc), rows in results.items():
            pub, rd, mb, pmb, sw, sr = (statistics.median(c) for c in zip(*rows, strict=True))
            print(f"{kind:6} {'AES-GCM' if enc else 'off':10} {pub:13.0f} {rd:10.0f} "
                  f"{mb:9.1f} {pmb:17.1f} {sw:15.0f} {sr:14.0f}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
