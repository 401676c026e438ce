"""Imports every task kind's screen module (one line per kind)."""
import console.tui.screens.migration  # noqa: F401
