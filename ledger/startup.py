"""What the writer checks before it writes, and again after a failed commit.

It acts only on what the signed tree proves: it refuses a database whose
append-only triggers were dropped or changed (``refuse_changed_guards``);
it rebuilds the tree's right edge from stored tiles and refuses to write unless
that rebuilds the last signed root, and unless nothing lies beyond the head
(``recover_state``); it recomputes the record index's running hash and checks
the writer's seal over it (``verify_records``, ``ledger.seal``), running the
full check once where there is no seal or it does not match
(``check_and_digest``).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable

from ledger.errors import IntegrityFailure
from ledger.fullcheck import check_log
from ledger.integrate import TreeState
from ledger.read.tree import rebuild_edge, signed_head
from ledger.seal import RecordsDigest, seal_head
from ledger.storage.base import WriterStore
from ledger.storage.rows import Head
from verifier.note import VerifierKey

__all__ = [
    "check_and_digest",
    "recover_state",
    "refuse_changed_guards",
    "verify_records",
]

log = logging.getLogger("saksi.sequencer")


def refuse_changed_guards(storage: WriterStore) -> None:
    """Stop unless the append-only triggers are the ones the migrations made.

    Raises:
        IntegrityFailure: a trigger is missing, altered, disabled or foreign.
    """
    guards = storage.guard_problems()
    if guards:
        raise IntegrityFailure(
            f"the database's append-only guards were changed: {'; '.join(guards)}"
        )


def recover_state(
    storage: WriterStore, verifier_key: VerifierKey, origin: str
) -> tuple[TreeState, Head]:
    """Rebuild the tree's right edge from storage and check it against the signed head.

    Steps: (1) the append-only triggers are those the migrations made; (2) the
    head's note is a valid checkpoint by the log key for the head's size and
    root, and the checkpoint stored at that size is the same; (3) the partial
    tile at every level is rebuilt from stored entries (level 0, each leaf
    re-hashed) and full tiles (higher levels, each tile's root recomputed);
    (4) those rebuild exactly the signed root; (5) no entry, index row,
    checkpoint or tile lies beyond the head.

    Raises:
        IntegrityFailure: any step fails.
        StorageUnavailable: the database cannot be read.
    """
    refuse_changed_guards(storage)  # (1)
    head = signed_head(storage, verifier_key, origin)  # (2)
    try:
        state = rebuild_edge(storage, head)  # (3), (4)
    except IntegrityFailure as e:
        raise IntegrityFailure(f"{e}{_located(storage, verifier_key, origin)}") from e
    size = head.size
    beyond = storage.beyond(size)  # (5)
    if beyond:
        raise IntegrityFailure("; ".join(beyond))
    return state, head


def _located(storage: WriterStore, verifier_key: VerifierKey, origin: str) -> str:
    """Where the full check finds the first difference (run only on a failure)."""
    report = check_log(storage, verifier_key, origin)
    if report.ok:
        return ""
    return f"; the full check finds: {report.problems[0].message}"


def verify_records(
    storage: WriterStore, head: Head, key: bytes, origin: str
) -> RecordsDigest | None:
    """The record index's running hash, if the writer's seal over it holds.

    Streams every index row below the head in index order. Returns None where
    the head has no seal, or the rows do not hash to what it seals (an edited,
    deleted, moved or added row): the caller then runs the full check.

    Raises:
        StorageUnavailable: the database cannot be read.
    """
    if head.seal is None:
        return None
    digest = RecordsDigest()
    try:
        digest.feed_many(storage.scan_records(head.size))
    except IntegrityFailure:
        return None
    sealed = seal_head(key, origin, head.size, head.root, digest.digest())
    return digest if hmac.compare_digest(sealed, head.seal) else None


def _progress_every(seconds: float) -> Callable[[int, int], None]:
    """A progress callback that logs a line at most every ``seconds``."""
    last = [time.monotonic()]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            log.warning(
                "full check: %s of %s entries (%.0f%%)",
                f"{done:,}",
                f"{total:,}",
                100.0 * done / total if total else 100.0,
            )

    return show


def check_and_digest(
    storage: WriterStore, verifier_key: VerifierKey, origin: str, head: Head
) -> RecordsDigest:
    """The full check (``saksi check``) of the whole log, then the index's hash.

    Raises:
        IntegrityFailure: the check found a difference (the message names it).
    """
    log.warning(
        "the record index has no valid seal at size %d: checking the whole log "
        "(every entry, tile, checkpoint and index row)",
        head.size,
    )
    report = check_log(storage, verifier_key, origin, _progress_every(30.0))
    if not report.ok:
        problem = report.problems[0]
        raise IntegrityFailure(f"the full check failed: {problem.message}")
    if report.size != head.size:
        raise IntegrityFailure("the log grew during the full check")
    digest = RecordsDigest()
    digest.feed_many(storage.scan_records(head.size))
    if digest.count not in (0, head.size):
        raise IntegrityFailure(
            f"the record index holds {digest.count} rows for {head.size} entries"
        )
    return digest
