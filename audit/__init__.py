"""Evidence for auditors, written from the log (``saksi export``).

``audit.export`` writes selective proof bundles (``saksi-proof-bundle/v1``),
which ``saksi-verify check-bundle`` checks offline. Not to be confused with
``verifier.fullaudit``, the observers' own replay of the whole log.
"""
