"""Raw binlog streaming: dump client, event headers, binlog files.

* ``client.DumpClient``: registers as a replica and streams events
  (``batches()`` fast path, ``events()`` one ``RawEvent`` at a time with the
  upstream position, GTID and transaction boundaries); also the base for
  the binlog backup task.
* ``events``: header layout, the few bodies positions depend on,
  ``GroupTracker`` (transaction boundaries and GTID position).
* ``writer``: ``BinlogFileWriter`` and ``read_events`` for local binlog files.
"""
