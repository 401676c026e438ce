"""Imports every task kind's screen module (one line per kind)."""
