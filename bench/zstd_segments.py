"""bench/zstd_segments: log-segment compression in process vs through the tool.

    python -m bench.zstd_segments [--segments N]

A log backup publishes a segment every half second, and verify and restore
decompress every segment.  Until this round each went through a ``zstd``
child process; now through the ``zstandard`` library.  This runs both on the
same segments, in one run, for two shapes of binlog:

- oltp: ~50 KB segments of small row events (what half a second of a busy
  OLTP primary gives);
- bulk: ~4 MB segments of ~4 KB rows (a bulk load).

and prints, per shape, milliseconds per segment for compress (publish) and
decompress (verify / restore), tool / library as a ratio (> 1: the library is
faster), and checks that each side reads what the other wrote.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import time

from console.engine.backup import zstd


def oltp_segment(rng: random.Random) -> bytes:
    out = bytearray()
    while len(out) < 50_000:
        # header-like fixed bytes, a table id, a few ints and a short string
        out += b"\x00\x00\x00\x00\x1e\x01\x00\x00\x00" + rng.randbytes(4)
        out += b"".join(rng.randrange(1 << 20).to_bytes(4, "little") for _ in range(6))
        out += rng.choice([b"alpha", b"beta", b"gamma", b"delta"]) * rng.randrange(1, 6)
    return bytes(out)


def bulk_segment(rng: random.Random) -> bytes:
    words = [rng.randbytes(6).hex().encode() for _ in range(500)]
    out = bytearray()
    while len(out) < 4_000_000:
        row = b" ".join(rng.choice(words) for _ in range(300))
        out += len(row).to_bytes(4, "little") + row
    return bytes(out)


def tool_compress(tool: str, data: bytes) -> bytes:
    return subprocess.run([tool, "-q", "-3", "-c"], input=data, capture_output=True, check=True).stdout


def tool_decompress(tool: str, data: bytes) -> bytes:
    return subprocess.run([tool, "-q", "-d", "-c"], input=data, capture_output=True, check=True).stdout


def timed(fn, items) -> tuple[float, list[bytes]]:
    t = time.perf_counter()
    out = [fn(x) for x in items]
    return (time.perf_counter() - t) * 1000 / len(items), out


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench.zstd_segments")
    ap.add_argument("--segments", type=int, default=200, help="oltp segments (bulk: a tenth)")
    args = ap.parse_args()
    tool = shutil.which("zstd")
    if not tool:
        print("zstd not found: apt-get install -y zstd", file=sys.stderr)
        return 2
    rng = random.Random(7)
    shapes = {"oltp": [oltp_segment(rng) for _ in range(args.segments)],
              "bulk": [bulk_segment(rng) for _ in range(max(2, args.segments // 10))]}
    print(f"{'shape':6} {'segs':>5} {'KB/seg':>8} {'op':11} {'tool ms':>9} {'library ms':>11} {'ratio':>6}")
    for shape, segs in shapes.items():
        kb = sum(map(len, segs)) / len(segs) / 1024
        t_c, by_tool = timed(lambda d: tool_compress(tool, d), segs)
        l_c, by_lib = timed(zstd.compress, segs)
        t_d, tool_read = timed(lambda d: tool_decompress(tool, d), by_lib)
        l_d, lib_read = timed(zstd.decompress, by_tool)
        if tool_read != segs or lib_read != segs:
            print(f"{shape}: a side could not read the other's frames", file=sys.stderr)
            return 1
        for op, t, lib in (("compress", t_c, l_c), ("decompress", t_d, l_d)):
            print(f"{shape:6} {len(segs):5} {kb:8.1f} {op:11} {t:9.2f} {lib:11.2f} {t / lib:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
