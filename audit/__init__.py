"""Evidence for auditors, written by the log's operator (to come).

Selective proof bundles and the audit report, checked by ``saksi-verify``. Not
to be confused with ``verifier.fullaudit``, the observers' own replay of the
whole log.
"""
