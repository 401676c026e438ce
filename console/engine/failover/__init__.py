"""Failover: detection, candidate ranking, planned switchover, emergency
failover with salvage, for MariaDB and MySQL.  See docs/failover.md.
Options: ``console.kinds.failover``."""
