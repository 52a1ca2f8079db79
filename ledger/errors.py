"""Ledger errors, grouped by fault (client, overload, storage, integrity).

The HTTP layer maps each to one status (api/errors.py); messages say what was
expected and what was found and never carry secrets or stack traces.
"""

from __future__ import annotations

__all__ = [
    "EntryRejected",
    "EntryTooLarge",
    "IntegrityFailure",
    "IssuedAtOutOfWindow",
    "LeaseLost",
    "LedgerError",
    "OutOfRange",
    "Pushback",
    "Refused",
    "RevisionConflict",
    "SignerUnavailable",
    "SkippedRevision",
    "StaleRevision",
    "StorageUnavailable",
    "WriterLockHeld",
    "WrongPayloadType",
    "WrongPrev",
]


class LedgerError(Exception):
    """Base class of everything the ledger raises on purpose.

    ``cause`` is a stable slug per class: the HTTP API's problem type keys on it.
    """

    cause = "ledger-error"


class EntryRejected(LedgerError):
    """The client's entry is unacceptable (maps to 400/413/422)."""

    cause = "entry-rejected"


class EntryTooLarge(EntryRejected):
    """The entry exceeds 65,535 bytes, the tlog-tiles entry bundle limit (413)."""

    cause = "entry-too-large"


class Pushback(LedgerError):
    """Too much work queued: retry later (503 with Retry-After)."""

    cause = "overloaded"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutOfRange(LedgerError):
    """An index or size beyond the tree (400/404)."""

    cause = "out-of-range"


class StorageUnavailable(LedgerError):
    """The database cannot be reached or refused the write; nothing was acknowledged."""

    cause = "storage-unavailable"


class WriterLockHeld(StorageUnavailable):
    """Another sequencer (a running ``saksi serve``) is this database's writer."""


class LeaseLost(WriterLockHeld):
    """Another process took the sequencer's lease: this one may commit nothing.

    Raised inside a commit whose fencing token is no longer the lease's (the
    transaction is rolled back) and by a renewal that finds it so.
    """


class Refused(LedgerError):
    """A refusal decided in another process, carried over as its cause and text.

    The sequencer of a cluster decides what a submission becomes; the process
    that queued it answers its client with the same problem type.
    """

    def __init__(self, cause: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.cause = cause
        # What the refusal said besides (``revision`` and ``payload_hash`` of
        # a chain conflict, a schema violation's ``path``).
        for name, value in extra.items():
            setattr(self, name, value)


class IntegrityFailure(LedgerError):
    """Stored data does not rebuild the signed tree: stop writing and alert."""

    cause = "integrity-failure"


class SignerUnavailable(LedgerError):
    """The log key could not sign a checkpoint; nothing was acknowledged."""

    cause = "signer-unavailable"


class WrongPayloadType(EntryRejected):
    """The envelope's payloadType is not the Saksi record type."""

    cause = "wrong-payload-type"


class IssuedAtOutOfWindow(EntryRejected):
    """``issued_at`` lies in the future beyond clock skew, or too far in the past."""

    cause = "issued-at-window"


class RevisionConflict(EntryRejected):
    """A record does not continue its subject's chain (409).

    Attributes:
        revision: the subject's current (latest logged) revision, or None.
        payload_hash: hex SHA-256 of that revision's payload, or None.
    """

    cause = "revision-conflict"

    def __init__(
        self, message: str, revision: int | None, payload_hash: str | None
    ) -> None:
        super().__init__(message)
        self.revision = revision
        self.payload_hash = payload_hash


class StaleRevision(RevisionConflict):
    """The revision is already taken: someone else wrote it first (a lost race)."""

    cause = "stale-revision"


class SkippedRevision(RevisionConflict):
    """The revision is beyond the next one: revisions are gapless."""

    cause = "skipped-revision"


class WrongPrev(RevisionConflict):
    """``prev`` does not name the subject's current revision."""

    cause = "wrong-prev"
