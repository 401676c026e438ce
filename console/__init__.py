"""dbops-console: operate MySQL-family replication topologies from the keyboard."""

__version__ = "0.1.0"
