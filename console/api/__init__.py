"""The engine's faces over HTTP (issue 14): the control API under
``/api/v1/`` (on a unix socket in the state directory, optionally on TCP
behind a bearer token), Prometheus metrics at ``/metrics``, and the
clients that speak to a running engine (the console, headless commands).

Layer: top (beside ``console.commands`` and ``console.tui``); imports the
engine, never Textual.
"""
