"""Replaying a Saksi log entry by entry: what an observer's audit checks (pure).

``Auditor`` is fed the log's entries in order (index, entry bytes) and decides
each one exactly as the server had to, from the log alone: nothing here trusts
the operator, reads a database or a clock. Numbered checks:

1. ``tree``: the entries hash (RFC 6962) to the root of the signed checkpoint
   (``TreeHasher`` here; fetching and the signature are the caller's).
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
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from verifier.dsse import verify_envelope
from verifier.election import ELECTION_SCHEMAS, RECAP, TALLY
from verifier.errors import MalformedInput, VerificationError
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    Record,
    parse_log_entry,
    parse_record,
    parse_timestamp,
)
from verifier.registry import GENESIS, AuthorizationError, KeyRegistry, parse_genesis
from verifier.rfc6962 import EMPTY_ROOT, hash_children, hash_leaf
from verifier.rules.arithmetic import recap_flags, tally_flags, totals_of
from verifier.rules.state import ElectionState, authorize_election, recap_children
from verifier.schema import check
from verifier.schemas import get_schema

__all__ = ["CHECKS", "NOT_FAILURES", "Auditor", "Finding", "TreeHasher"]

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
SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing an audit check found at one entry."""

    check: str
    index: int
    subject: str | None
    detail: str
    rule: str | None = None  # the arithmetic rule, for ``arithmetic`` flags

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


class TreeHasher:
    """The RFC 6962 root of a growing list of entries, in O(log n) memory."""

    def __init__(self) -> None:
        self.size = 0
        self._range: list[tuple[int, bytes]] = []  # (height, hash), left to right

    def add(self, entry: bytes) -> None:
        """Append one entry (its leaf hash is computed here)."""
        node, height = hash_leaf(entry), 0
        while self._range and self._range[-1][0] == height:
            node = hash_children(self._range.pop()[1], node)
            height += 1
        self._range.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        """The root of the entries added so far."""
        if not self._range:
            return EMPTY_ROOT
        node = self._range[-1][1]
        for _, left in reversed(self._range[:-1]):
            node = hash_children(left, node)
        return node


@dataclass
class _Head:
    revision: int
    payload_hash: str
    index: int


@dataclass
class _Recap:
    index: int
    children: list[tuple[str, str]]  # (subject, payload hash hex)


@dataclass
class Auditor:
    """Replays entries in order; collects findings and per-check counts."""

    registry: KeyRegistry = field(default_factory=KeyRegistry)
    election: ElectionState = field(default_factory=ElectionState)
    findings: list[Finding] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    size: int = 0
    _heads: dict[str, _Head] = field(default_factory=dict)
    _payloads: dict[str, int] = field(default_factory=dict)
    # payload hash -> (subject, totals) of every tally and recap, for recap sums
    _totals: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _recaps: dict[str, _Recap] = field(default_factory=dict)

    def _find(
        self,
        check_: str,
        index: int,
        subject: str | None,
        detail: str,
        rule: str | None = None,
    ) -> None:
        self.findings.append(Finding(check_, index, subject, detail[:500], rule))

    def add(self, index: int, entry: bytes) -> None:
        """Audit the entry at ``index`` (entries must come in log order)."""
        if index != self.size:
            raise ValueError(f"expected entry {self.size}, got {index}")
        self.size += 1
        self.checked["entry-format"] += 1
        try:
            logged = parse_log_entry(entry)
            envelope = logged.envelope
            if envelope.payload_type != RECORD_PAYLOAD_TYPE:
                raise MalformedInput(f"payload type {envelope.payload_type[:80]!r}")
            record = parse_record(envelope.payload)
        except VerificationError as e:
            self._find("entry-format", index, None, str(e))
            return
        subject = record.subject
        self.checked["schema"] += 1
        try:
            schema = get_schema(record.schema)
            check(schema, record.body, subject)
        except VerificationError as e:
            self._find("schema", index, subject, str(e))
            return
        self.checked["signatures"] += 1
        lookup: Callable[[str], bytes | None] = self.registry.public_key
        if record.schema == GENESIS.name:
            try:
                lookup = {
                    a.keyid: a.public_key for a in parse_genesis(record).admins
                }.get
            except VerificationError as e:
                self._find("schema", index, subject, str(e))
                return
        try:
            signers = verify_envelope(envelope, lookup)
        except VerificationError as e:
            self._find("signatures", index, subject, str(e))
            signers = ()
        self._issued_at(index, record, schema.max_age_days, logged.logged_at)
        if signers:
            self._authorize(index, record, signers, logged.logged_at)
        self._chain(index, record)
        if record.schema == RECAP.name:
            self._recap(index, record)
        elif record.schema == TALLY.name:
            self.checked["arithmetic"] += 1
            ballot = subject.split("/")[1]
            for flag in tally_flags(record.body, ballot):
                self._find(
                    "arithmetic",
                    index,
                    subject,
                    f"{flag.where}: {flag.detail}",
                    rule=flag.check,
                )
            self._totals[record.payload_hash] = (subject, totals_of(record.body))

    def _issued_at(
        self, index: int, record: Record, max_age_days: int, logged_at: str
    ) -> None:
        self.checked["issued-at"] += 1
        try:
            issued = parse_timestamp(record.issued_at, "issued_at")
            logged = parse_timestamp(logged_at, "logged_at")
        except VerificationError as e:
            self._find("issued-at", index, record.subject, str(e))
            return
        if issued > logged + SKEW:
            self._find(
                "issued-at",
                index,
                record.subject,
                f"issued_at {record.issued_at} is after logged_at {logged_at}",
            )
        elif issued < logged - dt.timedelta(days=max_age_days):
            self._find(
                "issued-at",
                index,
                record.subject,
                f"issued_at {record.issued_at} is more than {max_age_days} days "
                f"before logged_at {logged_at}",
            )

    def _authorize(
        self, index: int, record: Record, signers: tuple[str, ...], logged_at: str
    ) -> None:
        self.checked["authorization"] += 1
        schema = get_schema(record.schema)
        try:
            writer, changes = self.registry.check(
                record, schema, signers, index, logged_at
            )
            if writer is not None and record.schema in ELECTION_SCHEMAS:
                authorize_election(record, writer)
                self.election.check(record)
        except (AuthorizationError, VerificationError) as e:
            self._find("authorization", index, record.subject, str(e))
            return
        self.registry.apply(changes)
        self.election.apply(record)

    def _chain(self, index: int, record: Record) -> None:
        self.checked["revision-chain"] += 1
        self.checked["duplicate-payload"] += 1
        digest = record.payload_hash
        first = self._payloads.setdefault(digest, index)
        if first != index:
            self._find(
                "duplicate-payload",
                index,
                record.subject,
                f"the same record was logged at entry {first}",
            )
        head = self._heads.get(record.subject)
        expected = 0 if head is None else head.revision + 1
        if record.revision != expected:
            self._find(
                "revision-chain",
                index,
                record.subject,
                f"revision {record.revision}, expected {expected}",
            )
        elif head is not None and record.prev != head.payload_hash:
            self._find(
                "revision-chain",
                index,
                record.subject,
                f"prev {record.prev} is not revision {head.revision} "
                f"(entry {head.index}, payload hash {head.payload_hash})",
            )
        self._heads[record.subject] = _Head(record.revision, digest, index)

    def _recap(self, index: int, record: Record) -> None:
        self.checked["recap-children"] += 1
        self.checked["recap-sum"] += 1
        try:
            named = [(s, d.hex()) for s, d in recap_children(record)]
        except VerificationError as e:
            self._find("recap-children", index, record.subject, str(e))
            return
        bodies = []
        for subject, digest in named:
            known = self._totals.get(digest)
            if known is None or known[0] != subject:
                self._find(
                    "recap-children",
                    index,
                    record.subject,
                    f"child {subject} with payload hash {digest} is not in the log "
                    "before this recap",
                )
                return
            bodies.append(known[1])
        _, ballot, code = record.subject.split("/")
        region = "" if code == "national" else code
        counts = self.election.carries_candidates(ballot, region)
        for flag in recap_flags(record.body, bodies, counts):
            self._find(
                "recap-sum", index, record.subject, f"{flag.where}: {flag.detail}"
            )
        self._totals[record.payload_hash] = (record.subject, totals_of(record.body))
        self._recaps[record.subject] = _Recap(index, named)

    def stale_recaps(self) -> Iterator[Finding]:
        """Recap heads resting on a superseded child, at any level below."""
        stale: dict[str, bool] = {}

        def is_stale(subject: str) -> bool:
            if subject not in stale:
                recap = self._recaps[subject]
                stale[subject] = False
                stale[subject] = any(
                    self._heads[child].payload_hash != digest
                    or (child in self._recaps and is_stale(child))
                    for child, digest in recap.children
                    if child in self._heads
                )
            return stale[subject]

        # Deepest first, so that the recursion stays one level deep.
        for subject in sorted(self._recaps, key=len, reverse=True):
            if is_stale(subject):
                recap = self._recaps[subject]
                yield Finding(
                    "stale-recaps",
                    recap.index,
                    subject,
                    "a child was superseded after this recap was signed",
                )

    def report(self, root_matches: bool | None = None) -> dict[str, Any]:
        """Numbered checks with counts and findings; ``passed`` overall."""
        findings = self.findings + list(self.stale_recaps())
        by_check: dict[str, list[Finding]] = {name: [] for name, _ in CHECKS}
        for finding in findings:
            by_check[finding.check].append(finding)
        checked = Counter(self.checked)
        checked["stale-recaps"] = len(self._recaps)
        checks = []
        for number, (name, meaning) in enumerate(CHECKS, start=1):
            found = by_check[name]
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
                "findings": len(found),
                "indices": sorted({f.index for f in found}),
            }
            if name == "arithmetic":
                item["rules"] = dict(Counter(f.rule for f in found))
            checks.append(item)
        failed = root_matches is False or any(c["status"] == "fail" for c in checks)
        return {
            "size": self.size,
            "passed": not failed,
            "checks": checks,
            "findings": [f.to_json() for f in findings],
        }
