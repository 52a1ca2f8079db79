"""Replaying a Saksi log entry by entry: what an observer's audit checks.

Each entry is decided exactly as the server had to decide it, from the log alone:
nothing here trusts the operator, reads its database or a clock. Numbered checks:

1. ``tree``: the entries hash (RFC 6962) to the root of the signed checkpoint
   (``TreeHasher``; fetching and the signature are the caller's).
2. ``entry-format``: each entry is ``{"envelope", "logged_at"}`` with a DSSE
   envelope of a Saksi record.
3. ``schema``: a registered schema, and a body that fits it.
4. ``signatures``: every signature verifies, by a key the registry knew then.
5. ``issued-at``: ``issued_at`` no later than ``logged_at`` (plus the clock skew
   allowed) and no older than the schema allows.
6. ``authorization``: the signers may write the record at its position: grants,
   revocations, expiries, thresholds and scopes as of that entry; the election's
   stages and recap levels; regions in the registry, candidates on the lists.
7. ``revision-chain``: each subject's revisions are gapless and ``prev`` names the
   payload hash of the one before.
8. ``duplicate-payload``: no record payload is logged twice.
9. ``recap-children``: every child a recap names is in the log, under its code.
10. ``recap-sum``: a recap's totals equal the sum of exactly the children named.
11. ``arithmetic``: the tally rules of ``verifier.rules``. A form that does not add
    up is accepted as written: these are *flags*, listed, not failures.
12. ``stale-recaps``: recaps whose children (at any level below) have been
    superseded since they were signed; listed, not failures.

A finding names its check, the entry index and the record's subject. The audit
fails when any finding of checks 1 to 10 exists.

The work is split in two, one module each. ``examiner.examine`` does everything
one entry decides alone (parsing, schema, signatures by keys already known, the
issued_at window, arithmetic, totals, and a form against the election state it
is given, with that state's version): it is pure and runs in worker processes
(``run.run_audit``). ``auditor.Auditor.apply`` does what needs the log before the
entry (the key registry, the election state where the examiner's was older,
revision chains, duplicates, recap sums), in log order. That state lives in a
``store.AuditStore``, SQLite (standard library) in memory or in a file, so memory
stays bounded at any log size and a daily audit continues where the last one
stopped. ``report`` counts and lists the findings; ``tree`` hashes the entries.
"""

from __future__ import annotations

from verifier.fullaudit.auditor import Auditor
from verifier.fullaudit.examiner import SKEW, Examined, examine
from verifier.fullaudit.report import CHECKS, NOT_FAILURES, Finding
from verifier.fullaudit.run import ExaminerPool, default_workers, run_audit
from verifier.fullaudit.store import AuditStore
from verifier.fullaudit.tree import TreeHasher

__all__ = [
    "CHECKS",
    "NOT_FAILURES",
    "SKEW",
    "AuditStore",
    "Auditor",
    "Examined",
    "ExaminerPool",
    "Finding",
    "TreeHasher",
    "default_workers",
    "examine",
    "run_audit",
]
