"""Replaying a Saksi log entry by entry: what an observer's audit checks.

Each entry is decided exactly as the server had to decide it, from the log alone:
nothing here trusts the operator, reads its database or a clock. Numbered checks:

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

The work is split in two. ``examine`` does everything one entry decides alone
(parsing, schema, signatures by keys already known, the issued_at window,
arithmetic, totals, and a form against the election state it is given, with
that state's version): it is pure and runs in worker processes
(``verifier.audit_run``). ``Auditor.apply`` does what needs the log before the
entry (the key registry, the election state where the examiner's was older,
revision chains, duplicates, recap sums), in log order. That state lives in an
``AuditStore``, SQLite (standard library) in memory or in a file, so memory stays
bounded at any log size and a daily audit continues where the last one stopped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verifier.dsse import Envelope, UnknownKey, pae, verify_envelope
from verifier.election import ELECTION_SCHEMAS, RECAP, TALLY
from verifier.errors import MalformedInput, VerificationError
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    Record,
    parse_log_entry,
    parse_record,
    parse_timestamp,
)
from verifier.registry import (
    GENESIS,
    REGISTRY_SCHEMAS,
    AuthorizationError,
    Genesis,
    Grant,
    KeyRegistry,
    parse_genesis,
)
from verifier.rfc6962 import EMPTY_ROOT, hash_children, hash_leaf
from verifier.rules.arithmetic import recap_flags, tally_flags, totals_of
from verifier.rules.state import (
    STATE_SCHEMAS,
    ElectionState,
    authorize_election,
    recap_children,
)
from verifier.schema import check
from verifier.schemas import get_schema

__all__ = [
    "CHECKS",
    "NOT_FAILURES",
    "AuditStore",
    "Auditor",
    "Examined",
    "Finding",
    "TreeHasher",
    "examine",
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
SKEW = dt.timedelta(minutes=5)
# Records that change what later records are checked against: kept by the store
# so that a resumed audit rebuilds the key registry and the election state.
_STATEFUL = frozenset(REGISTRY_SCHEMAS) | STATE_SCHEMAS


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

    def __init__(self, frontier: list[tuple[int, bytes]] | None = None) -> None:
        self._range: list[tuple[int, bytes]] = list(frontier or [])  # left to right
        self.size = sum(1 << height for height, _ in self._range)

    @property
    def frontier(self) -> list[tuple[int, bytes]]:
        """(height, hash) of the perfect subtrees the tree so far is made of."""
        return list(self._range)

    def add(self, entry: bytes) -> None:
        """Append one entry (its leaf hash is computed here)."""
        self.add_leaf(hash_leaf(entry))

    def add_leaf(self, node: bytes) -> None:
        """Append one leaf hash."""
        height = 0
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


# -- one entry alone ---------------------------------------------------------------


@dataclass(slots=True)
class Examined:
    """What one entry decides alone, for ``Auditor.apply`` (picklable)."""

    index: int
    leaf: bytes
    findings: list[Finding] = field(default_factory=list)
    # None when the entry or its schema is broken. From a worker, a form the
    # election state has decided comes back without its body but its stage
    # (``verifier.audit_run``); ``Record.payload`` still holds every byte.
    record: Record | None = None
    digest: bytes = b""  # SHA-256 of the record's payload
    logged_at: str = ""
    signers: tuple[str, ...] = ()  # key IDs whose signatures verified
    # Signatures by keys the examiner did not know: (key ID, signature), and
    # the message they sign, for the auditor to check with its registry.
    pending: tuple[tuple[str, bytes], ...] = ()
    message: bytes = b""
    totals: str | None = None  # a tally's or recap's, JSON, for recap sums
    children: list[tuple[str, str]] | None = None  # a recap's (subject, hash hex)
    # The election state's verdict on a form (``ElectionState.check``): the
    # number of state records it was decided after, and its objection if any.
    # The auditor takes it when its own state is at that version.
    state_version: int = -1
    state_problem: str | None = None


def examine(
    index: int,
    entry: bytes,
    public_key: Callable[[str], bytes | None],
    skew: dt.timedelta = SKEW,
    election: tuple[ElectionState, int] | None = None,
) -> Examined:
    """Everything entry ``index`` decides alone.

    ``public_key`` gives the keys known so far; a signature by a key it does not
    know is left ``pending`` (the auditor knows the registry at that position).
    ``election``: the election state after that many state records, against
    which a form is decided here (the auditor uses the verdict if its state is
    at the same version when it applies the entry, and decides again if not).
    """
    out = Examined(index, hash_leaf(entry))
    try:
        logged = parse_log_entry(entry)
        envelope = logged.envelope
        if envelope.payload_type != RECORD_PAYLOAD_TYPE:
            raise MalformedInput(f"payload type {envelope.payload_type[:80]!r}")
        record = parse_record(envelope.payload)
    except VerificationError as e:
        out.findings.append(Finding("entry-format", index, None, str(e)[:500]))
        return out
    subject = record.subject
    try:
        schema = get_schema(record.schema)
        check(schema, record.body, subject)
        lookup = public_key
        if record.schema == GENESIS.name:
            lookup = {a.keyid: a.public_key for a in parse_genesis(record).admins}.get
    except VerificationError as e:
        out.findings.append(Finding("schema", index, subject, str(e)[:500]))
        return out
    out.record, out.logged_at = record, logged.logged_at
    out.digest = hashlib.sha256(record.payload).digest()
    known = tuple(s for s in envelope.signatures if lookup(s.keyid) is not None)
    unknown = tuple(s for s in envelope.signatures if lookup(s.keyid) is None)
    try:
        if known:
            verify_envelope(
                Envelope(envelope.payload_type, envelope.payload, known), lookup
            )
    except VerificationError as e:
        out.findings.append(Finding("signatures", index, subject, str(e)[:500]))
    else:
        out.signers = tuple(s.keyid for s in known)
        if unknown:  # checked by the auditor, which knows the registry then
            out.pending = tuple((s.keyid, s.sig) for s in unknown)
            out.message = pae(envelope.payload_type, envelope.payload)
    _issued_at(out, record, schema.max_age_days, skew)
    if record.schema == TALLY.name:
        ballot = subject.split("/")[1]
        for flag in tally_flags(record.body, ballot):
            out.findings.append(
                Finding(
                    "arithmetic",
                    index,
                    subject,
                    f"{flag.where}: {flag.detail}",
                    flag.check,
                )
            )
        out.totals = _json(totals_of(record.body))
        if election is not None:
            state, out.state_version = election
            try:
                state.check(record)
            except VerificationError as e:
                out.state_problem = str(e)
    elif record.schema == RECAP.name:
        try:
            out.children = [(s, d.hex()) for s, d in recap_children(record)]
        except VerificationError as e:
            out.findings.append(Finding("recap-children", index, subject, str(e)))
        out.totals = _json(totals_of(record.body))
    return out


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _issued_at(
    out: Examined, record: Record, max_age_days: int, skew: dt.timedelta
) -> None:
    try:
        issued = parse_timestamp(record.issued_at, "issued_at")
        logged = parse_timestamp(out.logged_at, "logged_at")
    except VerificationError as e:
        out.findings.append(Finding("issued-at", out.index, record.subject, str(e)))
        return
    if issued > logged + skew:
        detail = f"issued_at {record.issued_at} is after logged_at {out.logged_at}"
    elif issued < logged - dt.timedelta(days=max_age_days):
        detail = (
            f"issued_at {record.issued_at} is more than {max_age_days} days before "
            f"logged_at {out.logged_at}"
        )
    else:
        return
    out.findings.append(Finding("issued-at", out.index, record.subject, detail))


# -- what the log before an entry decides ----------------------------------------

_FORMAT = "2"  # of the store's tables; a state of another format needs --fresh
_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS heads (
    subject TEXT PRIMARY KEY, revision INTEGER, payload BLOB, idx INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payloads (hash BLOB PRIMARY KEY, idx INTEGER)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS totals (idx INTEGER PRIMARY KEY, subject TEXT, totals TEXT);
CREATE TABLE IF NOT EXISTS recaps (subject TEXT PRIMARY KEY, idx INTEGER, children TEXT)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings (
    seq INTEGER PRIMARY KEY, name TEXT, idx INTEGER, subject TEXT, detail TEXT,
    rule TEXT
);
CREATE TABLE IF NOT EXISTS replay (idx INTEGER PRIMARY KEY, entry BLOB);
"""


class AuditStore:
    """The audit's state: SQLite in memory (``None``) or in a file (resumable).

    Totals are kept by entry index, so that storing them appends to the table;
    a recap's child is found by its payload hash, then its index.

    Raises:
        sqlite3.DatabaseError: the file is not an audit state of this version.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.db = sqlite3.connect(":memory:" if path is None else str(path))
        self.db.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
            "PRAGMA journal_size_limit=67108864;"  # the WAL shrinks after each step
            "PRAGMA cache_size=-131072; PRAGMA temp_store=MEMORY;"
            "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
        )
        row = self.db.execute("SELECT v FROM meta WHERE k = 'format'").fetchone()
        found = None if row is None else row[0]
        if found not in (None, _FORMAT) or (found is None and self.progress()):
            self.db.close()
            raise sqlite3.DatabaseError(f"not an audit state of format {_FORMAT}")
        self.db.executescript(_SCHEMA_SQL)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (_FORMAT,))
        self.db.commit()
        self.db.execute("BEGIN")

    def progress(self) -> dict[str, Any] | None:
        """What ``save`` stored last (None for a new audit)."""
        row = self.db.execute("SELECT v FROM meta WHERE k = 'progress'").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def set_progress(self, value: dict[str, Any]) -> None:
        """Store the audit's progress (committed with ``commit``)."""
        self.db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('progress', ?)", (json.dumps(value),)
        )

    def commit(self) -> None:
        """Make everything so far durable (one transaction: all or nothing)."""
        self.db.commit()
        self.db.execute("BEGIN")

    def close(self) -> None:
        """Roll back what was not committed; close."""
        self.db.rollback()
        self.db.close()


class Auditor:
    """Replays entries in order; collects findings and per-check counts."""

    def __init__(
        self, store: AuditStore | None = None, skew: dt.timedelta = SKEW
    ) -> None:
        self.store = store or AuditStore()
        self.skew = skew
        self.registry = KeyRegistry()
        self.election = ElectionState()
        self.hasher = TreeHasher()
        self.checked: Counter[str] = Counter()
        self.size = 0
        # Every key the registry has learned, in order: what examiners in other
        # processes are told (a key ID names its key for good).
        self.keys: list[tuple[str, bytes]] = []
        # The payloads of the election-state records applied (regions, lists,
        # parties), from number ``state_base`` on: what examiners are told so
        # that they decide forms against the same state. ``state_version`` is
        # how many have been applied in all.
        self.state_records: list[bytes] = []
        self.state_base = 0
        self._stale_at = -1
        self._stale_found: list[Finding] = []
        db = self.store.db
        self._sql = db.execute
        # How many entries a checkpoint's root has confirmed: the state may hold
        # more, saved part-way through an audit whose root is still to be seen.
        self.confirmed = 0
        progress = self.store.progress()
        if progress is not None:
            self.size = int(progress["size"])
            self.confirmed = int(progress.get("confirmed", self.size))
            self.checked = Counter(progress["checked"])
            self.hasher = TreeHasher(
                [(h, bytes.fromhex(x)) for h, x in progress["frontier"]]
            )
            for index, entry in db.execute(
                "SELECT idx, entry FROM replay ORDER BY idx"
            ):
                self._replay(index, bytes(entry))

    @property
    def public_key(self) -> Callable[[str], bytes | None]:
        """Keys the registry knows now (for ``examine``)."""
        return self.registry.public_key

    def add(self, index: int, entry: bytes) -> None:
        """Audit the entry at ``index`` (entries must come in log order)."""
        self.apply(
            examine(
                index,
                entry,
                self.registry.public_key,
                self.skew,
                (self.election, self.state_version),
            )
        )

    def save(self, confirmed: bool = True) -> None:
        """Commit the state after the entries applied so far (resumable).

        ``confirmed``: the entries so far hash to a signed checkpoint's root.
        Without it this is a step part-way through a long audit: a resumed audit
        continues from it, and its entries are confirmed with the rest when the
        audit's root matches (the saved frontier binds them into that root).
        """
        if confirmed:
            self.confirmed = self.size
        self.store.set_progress(
            {
                "size": self.size,
                "confirmed": self.confirmed,
                "checked": dict(self.checked),
                "frontier": [[h, x.hex()] for h, x in self.hasher.frontier],
            }
        )
        self.store.commit()

    def _find(self, finding: Finding) -> None:
        self._sql(
            "INSERT INTO findings (name, idx, subject, detail, rule) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                finding.check,
                finding.index,
                finding.subject,
                finding.detail[:500],
                finding.rule,
            ),
        )

    def apply(self, examined: Examined) -> None:
        """Decide what needs the log before the entry, then record it."""
        index = examined.index
        if index != self.size:
            raise ValueError(f"expected entry {self.size}, got {index}")
        self.size += 1
        self.hasher.add_leaf(examined.leaf)
        self.checked["entry-format"] += 1
        record = examined.record
        early = {f.check for f in examined.findings}
        for finding in examined.findings:
            if finding.check in ("entry-format", "schema", "signatures", "issued-at"):
                self._find(finding)
        if record is None:
            if "entry-format" not in early:
                self.checked["schema"] += 1
            return
        self.checked["schema"] += 1
        self.checked["signatures"] += 1
        self.checked["issued-at"] += 1
        signers = examined.signers
        if examined.pending and "signatures" not in early:
            signers = self._pending(examined, record)
        if signers and "signatures" not in early:
            self._authorize(examined, record, signers)
        self._chain(index, record, examined.digest)
        if record.schema == RECAP.name:
            self._recap(index, record, examined)
        elif record.schema == TALLY.name:
            self.checked["arithmetic"] += 1
            for finding in examined.findings:
                if finding.check == "arithmetic":
                    self._find(finding)
            self._keep_totals(index, record, examined.totals)

    def _pending(self, examined: Examined, record: Record) -> tuple[str, ...]:
        """Check the signatures the examiner had no key for; all signers, or ()."""
        import nacl.exceptions
        import nacl.signing

        signed = list(examined.signers)
        for keyid, sig in examined.pending:
            key = self.registry.public_key(keyid)
            problem = None
            if key is None:
                problem = str(UnknownKey(keyid))
            else:
                try:
                    nacl.signing.VerifyKey(key).verify(examined.message, sig)
                except nacl.exceptions.BadSignatureError:
                    problem = f"signature by key {keyid} does not verify"
            if problem is not None:
                self._find(
                    Finding("signatures", examined.index, record.subject, problem)
                )
                return ()
            signed.append(keyid)
        return tuple(signed)

    def _authorize(
        self, examined: Examined, record: Record, signers: tuple[str, ...]
    ) -> None:
        self.checked["authorization"] += 1
        schema = get_schema(record.schema)
        index, logged_at = examined.index, examined.logged_at
        try:
            writer, changes = self.registry.check(
                record, schema, signers, index, logged_at
            )
            if writer is not None and record.schema in ELECTION_SCHEMAS:
                authorize_election(record, writer)
                if examined.state_version != self.state_version:
                    # Decided against an older state (a worker's, which may have
                    # sent the form without its body): decide again, in full.
                    decided = examined.state_version >= 0
                    self.election.check(
                        parse_record(record.payload) if decided else record
                    )
                elif examined.state_problem is not None:
                    self._find(
                        Finding(
                            "authorization",
                            index,
                            record.subject,
                            examined.state_problem,
                        )
                    )
                    return
        except (AuthorizationError, VerificationError) as e:
            self._find(Finding("authorization", index, record.subject, str(e)))
            return
        self._apply(changes, record)
        if record.schema in _STATEFUL:
            self._sql(
                "INSERT OR REPLACE INTO replay VALUES (?, ?)",
                (index, _replayable(record, signers, logged_at)),
            )

    def _replay(self, index: int, data: bytes) -> None:
        """Apply a stored state-changing record again (a resumed audit)."""
        record, signers, logged_at = _unreplayable(data)
        _, changes = self.registry.check(
            record, get_schema(record.schema), signers, index, logged_at
        )
        self._apply(changes, record)

    def _apply(self, changes: Genesis | list[Grant], record: Record) -> None:
        known = self.registry.grants
        changed = changes.admins if isinstance(changes, Genesis) else changes
        self.keys += [(g.keyid, g.public_key) for g in changed if g.keyid not in known]
        self.registry.apply(changes)
        if record.schema in STATE_SCHEMAS:
            self.election.apply(record)
            self.state_records.append(record.payload)

    @property
    def state_version(self) -> int:
        """How many election-state records have been applied."""
        return self.state_base + len(self.state_records)

    def state_told(self, version: int) -> None:
        """Every examiner has been told the state records before ``version``."""
        if version - self.state_base >= 1024:
            del self.state_records[: version - self.state_base]
            self.state_base = version

    def _chain(self, index: int, record: Record, raw: bytes) -> None:
        self.checked["revision-chain"] += 1
        self.checked["duplicate-payload"] += 1
        cursor = self._sql("INSERT OR IGNORE INTO payloads VALUES (?, ?)", (raw, index))
        if cursor.rowcount == 0:
            (first,) = self._sql(
                "SELECT idx FROM payloads WHERE hash = ?", (raw,)
            ).fetchone()
            self._find(
                Finding(
                    "duplicate-payload",
                    index,
                    record.subject,
                    f"the same record was logged at entry {first}",
                )
            )
        head = self._sql(
            "SELECT revision, payload, idx FROM heads WHERE subject = ?",
            (record.subject,),
        ).fetchone()
        expected = 0 if head is None else head[0] + 1
        if record.revision != expected:
            self._find(
                Finding(
                    "revision-chain",
                    index,
                    record.subject,
                    f"revision {record.revision}, expected {expected}",
                )
            )
        elif head is not None and record.prev != bytes(head[1]).hex():
            self._find(
                Finding(
                    "revision-chain",
                    index,
                    record.subject,
                    f"prev {record.prev} is not revision {head[0]} (entry {head[2]}, "
                    f"payload hash {bytes(head[1]).hex()})",
                )
            )
        self._sql(
            "INSERT OR REPLACE INTO heads VALUES (?, ?, ?, ?)",
            (record.subject, record.revision, raw, index),
        )

    def _keep_totals(self, index: int, record: Record, totals: str | None) -> None:
        self._sql(
            "INSERT INTO totals VALUES (?, ?, ?)", (index, record.subject, totals)
        )

    def _recap(self, index: int, record: Record, examined: Examined) -> None:
        self.checked["recap-children"] += 1
        self.checked["recap-sum"] += 1
        named = examined.children
        if named is None:
            for finding in examined.findings:
                if finding.check == "recap-children":
                    self._find(finding)
            return
        bodies = []
        for subject, digest in named:
            row = self._sql(
                "SELECT t.subject, t.totals FROM payloads p JOIN totals t "
                "ON t.idx = p.idx WHERE p.hash = ?",
                (bytes.fromhex(digest),),
            ).fetchone()
            if row is None or row[0] != subject:
                self._find(
                    Finding(
                        "recap-children",
                        index,
                        record.subject,
                        f"child {subject} with payload hash {digest} is not in the log "
                        "before this recap",
                    )
                )
                return
            bodies.append(json.loads(row[1]))
        _, ballot, code = record.subject.split("/")
        region = "" if code == "national" else code
        counts = self.election.carries_candidates(ballot, region)
        for flag in recap_flags(record.body, bodies, counts):
            self._find(
                Finding(
                    "recap-sum", index, record.subject, f"{flag.where}: {flag.detail}"
                )
            )
        self._keep_totals(index, record, examined.totals)
        self._sql(
            "INSERT OR REPLACE INTO recaps VALUES (?, ?, ?)",
            (record.subject, index, _json(named)),
        )

    def stale_recaps(self) -> Iterator[Finding]:
        """Recap heads resting on a superseded child, at any level below."""
        stale: dict[str, bool] = {}

        def head_of(subject: str) -> bytes | None:
            row = self._sql(
                "SELECT payload FROM heads WHERE subject = ?", (subject,)
            ).fetchone()
            return None if row is None else bytes(row[0])

        def recap(subject: str) -> tuple[int, list[tuple[str, str]]] | None:
            row = self._sql(
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

        subjects = [row[0] for row in self._sql("SELECT subject FROM recaps")]
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

    def findings(self) -> Iterator[Finding]:
        """Every finding so far, in the order found, then the stale recaps.

        Read from the store as iterated: a log with a million flagged forms is
        never held in memory at once.
        """
        rows = self.store.db.execute(
            "SELECT name, idx, subject, detail, rule FROM findings ORDER BY seq"
        )
        for name, index, subject, detail, rule in rows:
            yield Finding(name, index, subject, detail, rule)
        yield from self._stale()

    def _stale(self) -> list[Finding]:
        if self._stale_at != self.size:
            self._stale_found = list(self.stale_recaps())
            self._stale_at = self.size
        return self._stale_found

    def summary(self, root_matches: bool | None = None) -> dict[str, Any]:
        """The report without the findings themselves.

        Numbered checks with counts and the indices of their findings, and
        ``passed`` overall.
        """
        counts: Counter[str] = Counter()
        indices: dict[str, set[int]] = {name: set() for name, _ in CHECKS}
        rules: Counter[str | None] = Counter()
        rows = self.store.db.execute("SELECT name, idx, rule FROM findings")
        stale = ((f.check, f.index, f.rule) for f in self._stale())
        for name, index, rule in itertools.chain(rows, stale):
            counts[name] += 1
            indices[name].add(index)
            if name == "arithmetic":
                rules[rule] += 1
        checked = Counter(self.checked)
        (checked["stale-recaps"],) = self._sql("SELECT COUNT(*) FROM recaps").fetchone()
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
        return {"size": self.size, "passed": not failed, "checks": checks}

    def report(self, root_matches: bool | None = None) -> dict[str, Any]:
        """``summary`` with every finding listed (for logs of modest size)."""
        report = self.summary(root_matches)
        report["findings"] = [f.to_json() for f in self.findings()]
        return report


def _replayable(record: Record, signers: tuple[str, ...], logged_at: str) -> bytes:
    return json.dumps(
        {
            "payload": record.payload.decode("utf-8"),
            "signers": list(signers),
            "logged_at": logged_at,
        }
    ).encode("utf-8")


def _unreplayable(data: bytes) -> tuple[Record, tuple[str, ...], str]:
    raw = json.loads(data)
    return (
        parse_record(raw["payload"].encode("utf-8")),
        tuple(raw["signers"]),
        raw["logged_at"],
    )
