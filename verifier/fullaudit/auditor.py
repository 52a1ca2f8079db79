"""The audit in log order: what the log before an entry decides (checks 4 to 10).

``Auditor.apply`` takes what ``examine`` decided of one entry and adds what
needs the log before it: signatures by keys granted too recently for the
examiner to know (4), the key registry as of that entry and the election's
state (6), revision chains (7), duplicates (8), and recap children and sums (9,
10). Its state lives in an ``AuditStore``; the report is
``verifier.fullaudit.report``'s.
Nothing here trusts the operator, reads its database or a clock.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from verifier.dsse import UnknownKey
from verifier.election import ELECTION_SCHEMAS, RECAP, TALLY
from verifier.errors import VerificationError
from verifier.fullaudit.examiner import SKEW, Examined, compact_json, examine
from verifier.fullaudit.forensics import forensics
from verifier.fullaudit.report import Finding, findings, stale_recaps, summary
from verifier.fullaudit.store import AuditStore, replayable, unreplayable
from verifier.fullaudit.timeline import Hours, key_events, timeline
from verifier.fullaudit.tree import TreeHasher
from verifier.record import Record, parse_record
from verifier.registry import (
    REGISTRY_SCHEMAS,
    AuthorizationError,
    Genesis,
    Grant,
    KeyRegistry,
)
from verifier.rules.arithmetic import recap_flags
from verifier.rules.chain import chain_break, unlogged_child
from verifier.rules.state import (
    STATE_SCHEMAS,
    ElectionState,
    authorize_election,
)
from verifier.schema_registry import get_schema

__all__ = ["Auditor"]

# Records that change what later records are checked against: kept by the store
# so that a resumed audit rebuilds the key registry and the election state.
_STATEFUL = frozenset(REGISTRY_SCHEMAS) | STATE_SCHEMAS


class Auditor:
    """Replays entries in order; collects findings and per-check counts."""

    def __init__(
        self,
        store: AuditStore | None = None,
        skew: dt.timedelta = SKEW,
        *,
        sparse: bool = False,
    ) -> None:
        self.store = store or AuditStore()
        self.skew = skew
        # A selection of the log (a proof bundle), not all of it: entries come
        # in increasing order with gaps, each proven by its own inclusion proof
        # (no tree is rebuilt), and what needs an entry the selection does not
        # hold (the revision before a gap, a recap's child) is counted in
        # ``unchecked`` instead of found missing.
        self.sparse = sparse
        self.unchecked: Counter[str] = Counter()
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
        # Findings since the caller last cleared it (a monitor acts on each
        # entry's as it goes; the audit's report reads them from the store).
        self.recent: list[Finding] = []
        db = self.store.db
        self._sql = db.execute
        self.hours = Hours(db)
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
        self.hours.flush()
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
        self.recent.append(finding)
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
        if self.sparse:
            if index < self.size:
                raise ValueError(
                    f"expected an entry after {self.size - 1}, got {index}"
                )
            self.size = index + 1
        else:
            if index != self.size:
                raise ValueError(f"expected entry {self.size}, got {index}")
            self.size += 1
            self.hasher.add_leaf(examined.leaf)
        self.checked["entry-format"] += 1
        record = examined.record
        self.hours.add(examined.logged_at, record)
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
        if examined.correction is not None:
            self._sql(
                "INSERT INTO corrections VALUES (?, ?, ?)",
                (index, record.subject, examined.correction),
            )
        if record.schema == RECAP.name:
            self._recap(index, record, examined)
        elif record.schema == TALLY.name:
            self.checked["arithmetic"] += 1
            for finding in examined.findings:
                if finding.check == "arithmetic":
                    self._find(finding)
            self._keep_totals(index, record, examined.totals)
            self._keep_station(index, record, examined)

    def _keep_station(self, index: int, record: Record, examined: Examined) -> None:
        """A form's figures for the forensics; a total lowered with no correction."""
        figures = examined.station
        if figures is None:
            return
        stage = record.body.get("stage")
        if record.revision > 0:
            before = self._sql(
                "SELECT stage, total FROM stations WHERE subject = ?", (record.subject,)
            ).fetchone()
            # A machine reading may be lowered by the officers' confirmation
            # (that is what it is for); anything later only with a correction.
            if (
                before is not None
                and before[0] != "machine_reading"
                and figures[6] < before[1]
                and examined.correction is None
            ):
                self._sql(
                    "INSERT INTO decreases VALUES (?, ?, ?, ?)",
                    (index, record.subject, before[1], figures[6]),
                )
        self._sql(
            "INSERT OR REPLACE INTO stations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.subject,
                index,
                stage if isinstance(stage, str) else None,
                figures[6],
                *figures[:6],
                figures[7],
            ),
        )

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
            # The key registry's refusal (``key-revoked``, ``out-of-scope``,
            # ...) is the finding's rule: the monitor alerts on a revoked key's
            # write. The election state's objections have none (a worker
            # decides them too, and sends back only the words).
            cause = getattr(e, "cause", None)
            rule = cause if isinstance(e, AuthorizationError) else None
            self._find(Finding("authorization", index, record.subject, str(e), rule))
            return
        self._apply(changes, record)
        if record.schema in _STATEFUL:
            self._sql(
                "INSERT OR REPLACE INTO replay VALUES (?, ?)",
                (index, replayable(record, signers, logged_at)),
            )

    def _replay(self, index: int, data: bytes) -> None:
        """Apply a stored state-changing record again (a resumed audit)."""
        record, signers, logged_at = unreplayable(data)
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
        known = None if head is None else (head[0], bytes(head[1]).hex())
        broken = chain_break(record.revision, record.prev, known)
        if self.sparse and broken is not None and broken.kind == "skipped":
            # The revisions between are not in the selection: the link from
            # the last one it holds cannot be checked here (a full audit does).
            self.checked["revision-chain"] -= 1
            self.unchecked["revision-chain"] += 1
        elif broken is not None and broken.kind != "prev":
            self._find(
                Finding(
                    "revision-chain",
                    index,
                    record.subject,
                    f"revision {record.revision}, expected {broken.expected}",
                )
            )
        elif broken is not None and head is not None:
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
        totals: dict[bytes, str] = {}

        def logged_subject(digest: bytes) -> str | None:
            kept = self.store.figures(digest)
            if kept is None:
                return None
            totals[digest] = kept[2] or "{}"
            return kept[1]

        pairs = [(subject, bytes.fromhex(digest)) for subject, digest in named]
        missing = unlogged_child(pairs, logged_subject)
        if missing is not None and self.sparse:
            # A child the selection does not hold: neither that it is logged
            # nor the sum can be checked here (a full audit does).
            for check in ("recap-children", "recap-sum"):
                self.checked[check] -= 1
                self.unchecked[check] += 1
            self._keep_totals(index, record, examined.totals)
            self._sql(
                "INSERT OR REPLACE INTO recaps VALUES (?, ?, ?)",
                (record.subject, index, compact_json(named)),
            )
            return
        if missing is not None:
            self._find(
                Finding(
                    "recap-children",
                    index,
                    record.subject,
                    f"child {missing[0]} with payload hash {missing[1].hex()} is not "
                    "in the log before this recap",
                )
            )
            return
        bodies = [json.loads(totals[digest]) for _, digest in pairs]
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
            (record.subject, index, compact_json(named)),
        )

    def stale_recaps(self) -> Iterator[Finding]:
        """Recap heads resting on a superseded child, at any level below."""
        return stale_recaps(self.store.db)

    def findings(self) -> Iterator[Finding]:
        """Every finding so far, in the order found, then the stale recaps.

        Read from the store as iterated: a log with a million flagged forms is
        never held in memory at once.
        """
        return findings(self.store.db, self._stale())

    def _stale(self) -> list[Finding]:
        if self._stale_at != self.size:
            self._stale_found = list(self.stale_recaps())
            self._stale_at = self.size
        return self._stale_found

    def forensics(self) -> dict[str, Any]:
        """The election forensics of what was audited (``fullaudit.forensics``)."""
        return forensics(self.store.db, self.election, self._stale())

    def timeline(self) -> dict[str, Any]:
        """Entries per hour, by kind and by province (``fullaudit.timeline``)."""
        self.hours.flush()
        return timeline(self.store.db)

    def key_events(self) -> dict[str, Any]:
        """The key registry's events the audit applied (``fullaudit.timeline``)."""
        return key_events(self.store.db)

    def summary(self, root_matches: bool | None = None) -> dict[str, Any]:
        """The report without the findings themselves (``report.summary``)."""
        return summary(
            self.store.db, self.checked, self.size, self._stale(), root_matches
        )

    def report(self, root_matches: bool | None = None) -> dict[str, Any]:
        """``summary`` with every finding listed (for logs of modest size)."""
        report = self.summary(root_matches)
        report["findings"] = [f.to_json() for f in self.findings()]
        return report
