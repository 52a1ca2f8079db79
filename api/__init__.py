"""HTTP API and the ``saksi`` operator command (the service wiring).

Importing ``api`` itself loads nothing: the ``saksi`` launcher (``api.__main__``)
must start without the server packages to say that they are missing.
"""
