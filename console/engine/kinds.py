"""Imports every task kind so that each registers its config parser.

Add one line here per task kind.
"""
import console.engine.backup  # noqa: F401,E402  backup: config parser + engine factory
import console.engine.failover  # noqa: E402,F401  (failover)
import console.engine.migration  # noqa: F401
import console.engine.relay  # noqa: F401,E402  relay: config parser + engine factory
