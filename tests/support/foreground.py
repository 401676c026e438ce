"""A CLI command run in the background (``python -m console ...``), its
output lines collected as they come, stopped by a signal."""

from __future__ import annotations

import os
import subprocess
import sys
import threading


class Cli:
    """``python -m console ...`` in the background; its output lines collected."""

    def __init__(self, *argv: str, env: dict[str, str] | None = None):
        self.p = subprocess.Popen([sys.executable, "-m", "console", *argv], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(s, lines), daemon=True)
                         for s, lines in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def stop(self, sig: int, timeout: float = 120) -> int:
        assert self.p.poll() is None, "\n".join(self.err)
        self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
        for t in self._threads:
            t.join(10)
        return rc
