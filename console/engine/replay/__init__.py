"""Replaying stored binlog transactions into a server (``replayer.py``:
``Replayer``; ``txn.py``: ``Txn``, the transaction it replays).

Neutral ground: a point-in-time restore (``engine/backup/restore.py``)
and a failover's relay salvage (``engine/failover/salvage_relay.py``) both
use it; it imports neither."""
