"""The record layer of the write path: checked submissions and the writer's gate.

A submission is a DSSE envelope. Everything that does not depend on the log's
position is checked by ``prepare_submission`` in the caller's thread: (1) the
envelope's form, (2) its payload type, (3) the record's form, (4) a registered
schema and a body that fits it, (5) ``issued_at`` within its window, (6) every
signature, by a key the registry knows.

What does depend on the position is decided by ``RecordGate.admit`` in the
sequencer's writer thread, batch by batch and in order, so two writers racing for
one revision cannot both win: (7) a payload already logged is answered with its
original entry (idempotent retries, re-signed copies included), (8) the signers
are authorized by the key registry as of this entry (first, so that a writer who
may not write a subject learns nothing about its chain; an audit plan's seed must
lie beyond its own entry, ``verifier.sample.admit_plan``), (9) the revision continues
the subject's chain (gapless, ``prev`` naming the current head). Accepted records
become log entries ``{"envelope", "logged_at"}``; their index rows are written in
the same transaction; a batch that does not commit leaves the gate as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.errors import (
    IntegrityFailure,
    IssuedAtOutOfWindow,
    SkippedRevision,
    StaleRevision,
    WrongPayloadType,
    WrongPrev,
)
from ledger.gate import Accept, Decision, Existing, Refuse
from ledger.read.registry import replay_registry
from ledger.read.tree import Prover
from ledger.storage.base import WriterStore
from ledger.storage.rows import RecordRow
from verifier.body_schema import Schema, check
from verifier.dsse import Envelope, parse_envelope, verify_envelope
from verifier.errors import VerificationError
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    Record,
    format_log_entry,
    format_timestamp,
    parse_log_entry,
    parse_record,
    parse_timestamp,
)
from verifier.registry import (
    GENESIS,
    GRANT,
    REVOKE,
    Genesis,
    Grant,
    KeyRegistry,
    parse_genesis,
)
from verifier.rules.admit import check_election_record, named_children
from verifier.rules.chain import chain_break
from verifier.rules.state import (
    ElectionState,
)
from verifier.sample import PLAN, admit_plan
from verifier.schema_registry import get_schema

__all__ = [
    "DEFAULT_SKEW",
    "SUBMISSION_WEIGHT",
    "RecordGate",
    "Submission",
    "check_window",
    "prepare_submission",
]

DEFAULT_SKEW = dt.timedelta(minutes=5)
# What one submission counts for against the writer's batch bound in bytes.
SUBMISSION_WEIGHT = 1024


@dataclass(frozen=True, slots=True)
class Submission:
    """An envelope checked as far as it can be without the log's position."""

    envelope: Envelope
    record: Record
    schema: Schema
    signers: tuple[str, ...]

    @property
    def payload_hash(self) -> bytes:
        """SHA-256 of the record payload (what dedupe and ``prev`` use)."""
        return hashlib.sha256(self.record.payload).digest()


def prepare_submission(
    source: bytes | Mapping[str, Any],
    public_key: Callable[[str], bytes | None],
    now: dt.datetime,
    skew: dt.timedelta = DEFAULT_SKEW,
    max_age: dt.timedelta | None = None,
) -> Submission:
    """Check an envelope as far as possible outside the writer (steps 1 to 6).

    ``public_key`` looks up keys the registry has ever granted; a genesis record
    is checked against the admin keys it lists itself.

    Raises:
        MalformedInput: bad envelope, record, schema (``UnknownSchema``) or body
            (``SchemaViolation``).
        WrongPayloadType: not ``application/vnd.saksi.record+json``.
        IssuedAtOutOfWindow: ``issued_at`` in the future beyond ``skew``, or
            older than the schema allows (or ``max_age``, if shorter).
        UnknownKey, SignatureInvalid: a signature by an unknown key, or one that
            does not verify.
    """
    envelope = parse_envelope(source)  # (1)
    if envelope.payload_type != RECORD_PAYLOAD_TYPE:  # (2)
        raise WrongPayloadType(
            f"payloadType must be {RECORD_PAYLOAD_TYPE}, "
            f"found {envelope.payload_type[:80]!r}"
        )
    record = parse_record(envelope.payload)  # (3)
    schema = get_schema(record.schema)  # (4)
    check(schema, record.body, record.subject)
    check_window(record, schema, now, skew, max_age)  # (5)
    lookup = public_key
    if record.schema == GENESIS.name:
        lookup = {a.keyid: a.public_key for a in parse_genesis(record).admins}.get
    signers = verify_envelope(envelope, lookup)  # (6)
    return Submission(envelope, record, schema, signers)


def check_window(
    record: Record,
    schema: Schema,
    now: dt.datetime,
    skew: dt.timedelta = DEFAULT_SKEW,
    max_age: dt.timedelta | None = None,
) -> None:
    """Step (5): ``issued_at`` no later than ``now + skew``, no older than allowed.

    Raises:
        MalformedInput: ``issued_at`` is not an RFC 3339 UTC time.
        IssuedAtOutOfWindow: it is in the future beyond ``skew``, or older than
            the schema allows (or ``max_age``, if shorter).
    """
    issued = parse_timestamp(record.issued_at, "issued_at")
    if issued > now + skew:
        raise IssuedAtOutOfWindow(
            f"issued_at {record.issued_at} is in the future (now "
            f"{format_timestamp(now)}; allowed clock skew {skew})"
        )
    oldest = dt.timedelta(days=schema.max_age_days)
    if max_age is not None:
        oldest = min(oldest, max_age)
    if issued < now - oldest:
        raise IssuedAtOutOfWindow(
            f"issued_at {record.issued_at} is older than the {oldest} "
            f"{schema.name} records may wait here"
        )


class RecordGate:
    """Steps 7 to 9 in the writer thread, with undo for batches that fail."""

    def __init__(
        self,
        storage: WriterStore,
        registry: KeyRegistry,
        election: ElectionState | None = None,
        *,
        skew: dt.timedelta = DEFAULT_SKEW,
        max_age: dt.timedelta | None = None,
    ) -> None:
        self._storage = storage
        self.registry = registry
        # The issued_at window, checked again against the time that is logged:
        # the clock may have stepped since the envelope was prepared.
        self.skew, self.max_age = skew, max_age
        self.election = election or ElectionState()
        self._rows: list[RecordRow] = []
        self._undo: list[tuple[str | None, Any]] = []
        self._election_undo: list[tuple[str, Any, Any]] = []

    def start(self, prove: Prover) -> None:
        """Rebuild the key registry by replaying the registry records in the log.

        Every replayed entry is proven against the signed tree first.

        Raises:
            IntegrityFailure: stored registry records are not the signed ones,
                or no longer replay.
        """
        registry, election = KeyRegistry(), ElectionState()
        replay_registry(
            self._storage, registry, 0, None, election, index=self._storage, prove=prove
        )
        self.registry, self.election = registry, election

    def public_key(self, keyid: str) -> bytes | None:
        """Any key the registry has ever granted (for ``prepare_submission``)."""
        return self.registry.public_key(keyid)

    # -- the Gate protocol of ledger.sequencer -------------------------------------

    def admit(
        self, items: Sequence[Submission], first_index: int, now_ms: int
    ) -> list[Decision]:
        """Decide each submission in order; accepted ones get consecutive indices."""
        self._rows, self._undo, self._election_undo = [], [], []
        subs = items
        logged = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
        logged_at = format_timestamp(logged)
        stored, heads = self._storage.chain_state(
            [s.payload_hash for s in subs], [s.record.subject for s in subs]
        )
        children = self._children_of(subs)  # payload hash -> subject
        batch_payloads: dict[bytes, int] = {}
        index = first_index
        decisions: list[Decision] = []
        for item in items:
            payload_hash = item.payload_hash
            known = batch_payloads.get(payload_hash, stored.get(payload_hash))
            if known is not None:  # (7)
                if payload_hash not in batch_payloads and known >= first_index:
                    raise IntegrityFailure(
                        f"the record index names entry {known}, beyond the "
                        f"signed size {first_index}"
                    )
                decisions.append(Existing(known, _holds_payload(payload_hash)))
                continue
            try:
                # (5) again, at the time logged: an entry never carries an
                # issued_at outside its window, however the clock stepped.
                check_window(item.record, item.schema, logged, self.skew, self.max_age)
                writer = self.registry.authorize(  # (8)
                    item.record, item.schema, item.signers, index, logged_at
                )
                if writer is not None:
                    check_election_record(
                        item.record, writer, self.election, children.get
                    )
                if item.record.schema == PLAN.name:
                    admit_plan(item.record, index)
                self._check_chain(item.record, heads.get(item.record.subject))  # (9)
                changes = self.registry.changes(item.record, index)
                entry = format_log_entry(item.envelope, logged_at)
                self._apply(item.record, changes)
                self._election_undo += self.election.apply(item.record)
            except (
                VerificationError,
                IssuedAtOutOfWindow,
                StaleRevision,
                SkippedRevision,
                WrongPrev,
            ) as e:
                decisions.append(Refuse(e))
                continue
            row = RecordRow(
                index,
                item.record.subject,
                item.record.revision,
                item.record.schema,
                payload_hash,
            )
            heads[item.record.subject] = row
            batch_payloads[payload_hash] = index
            children.setdefault(payload_hash, row.subject)
            self._rows.append(row)
            decisions.append(Accept(entry))
            index += 1
        return decisions

    def rows(self) -> Sequence[RecordRow]:
        """The index rows of the records accepted by the last ``admit``."""
        return self._rows

    def finish(self, committed: bool) -> None:
        """The batch committed (keep its effects) or did not (undo them)."""
        if not committed:
            self.election.undo(self._election_undo)
            for keyid, previous in reversed(self._undo):
                if keyid is None:
                    self.registry.genesis = previous
                elif previous is None:
                    self.registry.grants.pop(keyid, None)
                else:
                    self.registry.grants[keyid] = previous
        self._rows, self._undo, self._election_undo = [], [], []

    # -- steps ---------------------------------------------------------------------

    def _children_of(self, subs: Sequence[Submission]) -> dict[bytes, str]:
        # The logged subject of every child the batch's recaps name, read at once.
        wanted = named_children(s.record for s in subs)
        if not wanted:
            return {}
        return {
            digest: row.subject
            for digest, row in self._storage.records_by_payload(wanted).items()
        }

    @staticmethod
    def _check_chain(record: Record, head: RecordRow | None) -> None:
        known = None if head is None else (head.revision, head.payload_hash.hex())
        broken = chain_break(record.revision, record.prev, known)
        if broken is None:
            return
        current, current_hash = broken.current, broken.current_hash
        if broken.kind == "stale":
            raise StaleRevision(
                f"{record.subject} is already at revision {current}; "
                f"revision {record.revision} is taken (fetch the current head "
                "and resubmit as the next revision)",
                current,
                current_hash,
            )
        if broken.kind == "skipped":
            raise SkippedRevision(
                f"{record.subject} is at revision "
                f"{'none' if current is None else current}; the next is "
                f"{broken.expected}, found {record.revision}",
                current,
                current_hash,
            )
        raise WrongPrev(
            f"prev must be {current_hash}, the payload hash of {record.subject} "
            f"revision {current}",
            current,
            current_hash,
        )

    def _apply(self, record: Record, changes: Genesis | list[Grant]) -> None:
        # Remember what the change replaces, so a failed commit can undo it.
        if record.schema in (GENESIS.name, GRANT.name, REVOKE.name):
            self._undo.append((None, self.registry.genesis))
            for keyid in {record.body.get("keyid"), record.body.get("replaces")}:
                if isinstance(keyid, str):
                    self._undo.append((keyid, self.registry.grants.get(keyid)))
        self.registry.apply(changes)


def _holds_payload(payload_hash: bytes) -> Callable[[bytes], bool]:
    """Whether a stored entry's record is the one with ``payload_hash``."""

    def holds(data: bytes) -> bool:
        try:
            payload = parse_log_entry(data).envelope.payload
        except VerificationError:
            return False
        return hashlib.sha256(payload).digest() == payload_hash

    return holds
