"""Imports every task kind's screen module (one line per kind)."""
import console.tui.screens.backup  # noqa: F401,E402  backup screen
import console.tui.screens.failover  # noqa: F401  (failover)
import console.tui.screens.migration  # noqa: F401
import console.tui.screens.relay  # noqa: F401,E402  relay screen
