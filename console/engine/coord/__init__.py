"""Coordination of engines: who runs which task, the checkpoints that never
move backwards, pause flags, last errors and the audit log.  One interface
(``coordinator.py``), two implementations: the state directory
(``statedir.py``, one engine, today's behaviour) and etcd (``etcd.py``, N
engines sharing one fleet)."""
