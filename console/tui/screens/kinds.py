"""Imports every task kind's screen module (one line per kind)."""
import console.tui.screens.failover  # noqa: F401  (failover)
