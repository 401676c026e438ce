"""Operator actions on a cluster's topology (issue 15): relocate a replica,
start/stop replication, read_only, downtime, the automatic-recovery switch,
re-attaching an old primary (with flashback) and the recovery history.

One concept per module; the ``topology`` subcommand is a thin call into
these.  No Textual here."""
