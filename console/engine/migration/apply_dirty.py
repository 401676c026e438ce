"""The binlog apply's dirty keys: every key of the original table that a
decoded row event touched (before and after images), for the checksum's
final pass (the final rounds and the check under the cut-over lock compare
only those); past ``dirty_limit`` keys the tracking stops and the checksum
does a full pass.

``DirtyKeys`` is mixed into ``Applier`` (``apply.py``), whose ``__init__``
sets the limit and the set."""

from __future__ import annotations


class DirtyKeys:
    """Dirty keys of ``Applier``: recorded at decode time, taken by the checksum."""

    @property
    def tracking_dirty(self) -> bool:
        return self._dirty is not None

    def mark_dirty(self, ops: list[tuple]) -> None:
        """Record the keys of decoded ops (called at decode time, so before
        any marker that follows them in the stream is signalled).  Past
        ``dirty_limit`` keys tracking stops and ``dirty_overflow`` is set."""
        with self._dlock:
            d = self._dirty
            if d is None:
                return
            for op in ops:
                for vals in op[1:]:
                    d.add(self.builder.key_of(vals))
            if len(d) > self.dirty_limit:
                self._dirty = None
                self.dirty_overflow = True

    def take_dirty(self) -> set[tuple] | None:
        """The keys touched since the last call (None when not tracking or
        overflowed); tracking goes on with an empty set."""
        with self._dlock:
            d = self._dirty
            if d is None:
                return None
            self._dirty = set()
            return d

