"""``saksi monitor``: a security monitor that watches the public log.

It follows the log through the public tlog-tiles API exactly as an outside
observer does (``verifier``'s code: checkpoints, consistency, the audit of
every entry), never the operator's database, and raises alerts as metrics,
JSON lines and webhook POSTs in Alertmanager's format. See the README, "The
security monitor".
"""
