"""The audit's findings and its report: the numbered checks and what they found.

``CHECKS`` names the checks in their order (``verifier.fullaudit`` describes
each); ``NOT_FAILURES`` are the ones that list flags and notices rather than
fail the audit. ``summary`` counts the findings an ``AuditStore`` holds per
check; ``findings`` streams them; ``stale_recaps`` finds check 12's notices.
Nothing here decides an entry: ``verifier.fullaudit.examiner`` and
``verifier.fullaudit.auditor`` do.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHECKS",
    "NOT_FAILURES",
    "Finding",
    "findings",
    "stale_recaps",
    "summary",
]

# (name, what it means); the position is the check's number (1-based).
CHECKS = (
    ("tree", "the entries hash to the signed checkpoint's root"),
    ("entry-format", "every entry is a log entry holding a DSSE record envelope"),
    ("schema", "every record has a registered schema and a body that fits it"),
    ("signatures", "every signature verifies, by a key the registry knew"),
    ("issued-at", "issued_at within its window of logged_at"),
    ("authorization", "the signers may write the record at its position"),
    ("revision-chain", "revisions are gapless and prev names the one before"),
    ("duplicate-payload", "no record is logged twice"),
    ("recap-children", "every child a recap names is in the log"),
    ("recap-sum", "recap totals equal the sum of their children"),
    ("arithmetic", "tally arithmetic (flags: forms accepted as written)"),
    ("stale-recaps", "recaps signed before a child was superseded (notices)"),
)
NOT_FAILURES = frozenset({"arithmetic", "stale-recaps"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing an audit check found at one entry."""

    check: str
    index: int
    subject: str | None
    detail: str
    # The arithmetic rule of an ``arithmetic`` flag; the refusal's cause of an
    # ``authorization`` finding (``key-revoked``, ``out-of-scope``, ...).
    rule: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The finding as the report lists it."""
        out: dict[str, Any] = {
            "check": self.check,
            "index": self.index,
            "subject": self.subject,
            "detail": self.detail,
        }
        if self.rule is not None:
            out["rule"] = self.rule
        return out


def stale_recaps(db: sqlite3.Connection) -> Iterator[Finding]:
    """Recap heads resting on a superseded child, at any level below."""
    stale: dict[str, bool] = {}

    def head_of(subject: str) -> bytes | None:
        row = db.execute(
            "SELECT payload FROM heads WHERE subject = ?", (subject,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def recap(subject: str) -> tuple[int, list[tuple[str, str]]] | None:
        row = db.execute(
            "SELECT idx, children FROM recaps WHERE subject = ?", (subject,)
        ).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def is_stale(subject: str) -> bool:
        if subject not in stale:
            found = recap(subject)
            stale[subject] = False
            if found is not None:
                stale[subject] = any(
                    (head := head_of(child)) is not None
                    and (head.hex() != digest or is_stale(child))
                    for child, digest in found[1]
                )
        return stale[subject]

    subjects = [row[0] for row in db.execute("SELECT subject FROM recaps")]
    # Deepest first, so that the recursion stays one level deep.
    for subject in sorted(subjects, key=len, reverse=True):
        found = recap(subject)
        if found is not None and is_stale(subject):
            yield Finding(
                "stale-recaps",
                found[0],
                subject,
                "a child was superseded after this recap was signed",
            )


def findings(db: sqlite3.Connection, stale: Iterable[Finding]) -> Iterator[Finding]:
    """Every finding in the store, in the order found, then ``stale``.

    Read from the store as iterated: a log with a million flagged forms is
    never held in memory at once.
    """
    rows = db.execute(
        "SELECT name, idx, subject, detail, rule FROM findings ORDER BY seq"
    )
    for name, index, subject, detail, rule in rows:
        yield Finding(name, index, subject, detail, rule)
    yield from stale


def summary(
    db: sqlite3.Connection,
    checked: Counter[str],
    size: int,
    stale: Iterable[Finding],
    root_matches: bool | None = None,
) -> dict[str, Any]:
    """The report without the findings themselves.

    Numbered checks with counts and the indices of their findings, and
    ``passed`` overall. ``checked``: entries each check looked at; ``size``:
    entries applied; ``stale``: the stale recaps; ``root_matches``: check 1's
    verdict (None: not made).
    """
    counts: Counter[str] = Counter()
    indices: dict[str, set[int]] = {name: set() for name, _ in CHECKS}
    rules: Counter[str | None] = Counter()
    rows = db.execute("SELECT name, idx, rule FROM findings")
    stale_rows = ((f.check, f.index, f.rule) for f in stale)
    for name, index, rule in itertools.chain(rows, stale_rows):
        counts[name] += 1
        indices[name].add(index)
        if name == "arithmetic":
            rules[rule] += 1
    checked = Counter(checked)
    (checked["stale-recaps"],) = db.execute("SELECT COUNT(*) FROM recaps").fetchone()
    checks = []
    for number, (name, meaning) in enumerate(CHECKS, start=1):
        found = counts[name]
        if name == "tree":
            status = (
                "skipped"
                if root_matches is None
                else "pass"
                if root_matches
                else "fail"
            )
            count = 0 if root_matches is None else 1
        else:
            failing = bool(found) and name not in NOT_FAILURES
            status = "fail" if failing else "flagged" if found else "pass"
            count = checked[name]
        item: dict[str, Any] = {
            "number": number,
            "check": name,
            "meaning": meaning,
            "status": status,
            "checked": count,
            "findings": found,
            "indices": sorted(indices[name]),
        }
        if name == "arithmetic":
            item["rules"] = dict(rules)
        checks.append(item)
    failed = root_matches is False or any(c["status"] == "fail" for c in checks)
    return {"size": size, "passed": not failed, "checks": checks}
