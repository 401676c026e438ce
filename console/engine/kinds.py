"""Imports every task kind so that each registers its config parser.

Add one line here per task kind.
"""
import console.engine.migration  # noqa: F401
