"""A hand-off between the reading and the writing thread, bounded by bytes.

The reader must not stall while the writer fsyncs (that is the point of two
threads), so the bound is generous in bytes rather than a small count of
batches of unknown size.
"""

from __future__ import annotations

import collections
import threading
from typing import Any


class BytePipe:
    def __init__(self, limit_bytes: int = 64 << 20):
        self.limit = limit_bytes
        self._items: collections.deque = collections.deque()
        self._size = 0
        self._cond = threading.Condition()
        self._broken = False

    def put(self, item: Any, size: int = 0) -> bool:
        """Blocks while full; False when the consumer is gone (``break_``)."""
        with self._cond:
            while self._size and self._size + size > self.limit and not self._broken:
                self._cond.wait(0.5)
            if self._broken:
                return False
            self._items.append((item, size))
            self._size += size
            self._cond.notify_all()
            return True

    def get(self) -> Any:
        with self._cond:
            while not self._items:
                self._cond.wait()
            item, size = self._items.popleft()
            self._size -= size
            self._cond.notify_all()
            return item

    def break_(self) -> None:
        """The consumer stops: producers return False instead of blocking."""
        with self._cond:
            self._broken = True
            self._items.clear()
            self._size = 0
            self._cond.notify_all()
