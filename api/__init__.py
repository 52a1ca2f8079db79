"""HTTP API: the FastAPI app and its service wiring (``saksi serve`` is in ``cli``).

Importing ``api`` itself loads nothing: ``python -m api`` (``api.__main__``)
still launches ``saksi`` and must start without the server packages to say
that they are missing.
"""
