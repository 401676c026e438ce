"""A headless command following tasks that run in a serving engine: a
thread reads the engine's live stream (``/api/v1/stream``: feed entries as
they happen, a snapshot every interval) into a queue, so the command's
main thread keeps its stop signals and never blocks on the network."""

from __future__ import annotations

import queue
import threading
from typing import Any

from console.api.client import ApiError, EngineClient


class Follower:
    """The stream of ``client``'s engine from feed entry ``since`` on (None:
    from now on).
    ``take(timeout)`` gives what arrived: ``(name, data)`` pairs, ``name``
    one of ``snapshot`` / ``audit`` / ``event``; ``ended`` is set (with
    ``why``) once the stream is gone (the engine stopped or died)."""

    def __init__(self, client: EngineClient, since: int | None, *, interval: float = 1.0,
                 monitors: bool = False):
        self.client = client
        self.ended = threading.Event()
        self.why = ""
        self._q: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._args = {"since": since, "interval": interval,
                      "monitors": "true" if monitors else None}
        threading.Thread(target=self._read, name="engine-follow", daemon=True).start()

    def _read(self) -> None:
        try:
            for name, data in self.client.events("/api/v1/stream", **self._args):
                self._q.put((name, data))
            self.why = "the engine closed its stream (it stopped)"
        except (ApiError, OSError, ValueError) as e:
            self.why = str(e) or type(e).__name__
        finally:
            self.ended.set()
            self._q.put(("ended", self.why))

    def take(self, timeout: float) -> list[tuple[str, Any]]:
        out = []
        try:
            out.append(self._q.get(timeout=timeout))
            while True:
                out.append(self._q.get_nowait())
        except queue.Empty:
            pass
        return out


def task_in(snapshot: dict, task_id: str) -> dict | None:
    """The task ``task_id`` of a ``snapshot`` event, or None."""
    return next((t for t in snapshot.get("tasks", ()) if t.get("task_id") == task_id), None)
