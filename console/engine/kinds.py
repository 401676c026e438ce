"""Imports every task kind so that each registers its config parser.

Add one line here per task kind.
"""

import console.engine.failover  # noqa: E402,F401  (failover)
