"""A record log opened in this process: for writing and reading, or reading only.

``RecordLog`` is the writer's process: the sequencer (``Ledger``) with the
record gate, its write interface (``writer``), and the read side over the
committed tree (``reader``, ``entries``, ``registry``), with witnesses once
``witness_with`` names them. ``ReadOnlyLog`` is the read side alone, over the
signed head in the database (``ledger.read.stored.StoredTree``): no signing
key, no writer's lock, so any number of them can serve a log one writer
writes. Both offer the same read side; the HTTP API (``api.app.create_app``)
takes either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from collections.abc import Callable, Sequence

from ledger.admission import DEFAULT_SKEW, SUBMISSION_WEIGHT, RecordGate, Submission
from ledger.cosigning import WitnessEndpoint, Witnessing
from ledger.errors import IntegrityFailure, LedgerError
from ledger.health import LogHealth
from ledger.ledger import Ledger
from ledger.read.entries import EntryReader
from ledger.read.proof_builder import FullTileCache
from ledger.read.reader import LogReader
from ledger.read.registry import RegistryReader
from ledger.read.stored import StoredTree
from ledger.read.tree import SignedTree
from ledger.read.witnessed import StoredWitnessed
from ledger.sequencer import SequencerConfig
from ledger.storage.sql import SqlStorage
from ledger.writer import RecordWriter
from verifier.checkpoint import Checkpoint
from verifier.note import NoteSigner, VerifierKey
from verifier.registry import KeyRegistry
from verifier.rules.state import ElectionState

__all__ = ["ReadOnlyLog", "RecordLog"]


def _weight(_submission: Submission) -> int:
    return SUBMISSION_WEIGHT


class RecordLog:
    """One record log, opened on a database, with its writer running."""

    def __init__(
        self,
        storage: SqlStorage,
        signer: NoteSigner,
        verifier_key: VerifierKey,
        origin: str,
        *,
        clock: Callable[[], float],
        config: SequencerConfig | None = None,
        skew: dt.timedelta = DEFAULT_SKEW,
        max_age: dt.timedelta | None = None,
    ) -> None:
        self.storage = storage
        self.origin = origin
        self.verifier_key = verifier_key
        # Empty until the writer starts: it replays the registry from entries
        # it has proven against the signed tree (``Ledger.start``).
        self.gate = RecordGate(
            storage, KeyRegistry(), ElectionState(), skew=skew, max_age=max_age
        )
        self.ledger: Ledger[Submission] = Ledger(
            storage,
            signer,
            verifier_key,
            origin,
            gate=self.gate,
            weigh=_weight,
            clock=clock,
            config=config,
        )
        self.writer = RecordWriter(
            self.ledger, self.gate, clock, skew=skew, max_age=max_age
        )
        self.reader: LogReader = self.ledger.reader
        self.entries = EntryReader(self.reader, storage)
        self.registry = RegistryReader(
            self.reader, storage, live=lambda: self.gate.election
        )
        self.witnessing: Witnessing | None = None

    def start(self) -> None:
        """Check storage and start the writer (see ``Ledger.start``)."""
        self.ledger.start()

    def witness_with(self, endpoints: Sequence[WitnessEndpoint]) -> None:
        """Have every new checkpoint cosigned by ``endpoints`` (after ``start``).

        The first round runs before this returns: a witness that has cosigned a
        larger tree than the log holds stops it here, before any write
        (``IntegrityFailure``). The reader's current checkpoint is the
        witnessed note from then on; each is stored as well, for the log's
        read-only processes (``ledger.read.witnessed``).

        Raises:
            IntegrityFailure: a witness holds a larger tree (a rollback).
        """
        ledger = self.ledger

        def current() -> tuple[int, bytes]:
            now = ledger.head
            return now.size, now.note

        witnessing = Witnessing(
            current,
            lambda old, new: ledger.reader.consistency_proof(old, new),
            self.verifier_key,
            self.origin,
            endpoints,
            clock=self.writer.clock,
            keep=self.storage.put_witnessed,
        )
        try:
            witnessing.begin()
        except IntegrityFailure as e:
            ledger.halt(e)
            raise
        self.witnessing = witnessing
        ledger.publish_witnessed(witnessing.published)

    def witness_status(self) -> list[dict[str, object]]:
        """Each witness's state, as ``/v1/log`` lists it."""
        return [] if self.witnessing is None else self.witnessing.status()

    def health(self) -> LogHealth:
        """A snapshot for readiness and metrics (no database read)."""
        ledger = self.ledger
        head = ledger.head
        failure = ledger.failure
        try:
            published = self.reader.current().size
        except LedgerError:
            published = head.size
        return LogHealth(
            integrated_size=head.size,
            signed_at=head.made_at_ms / 1000,
            published_size=published,
            queue_depth=ledger.queue_depth,
            stopped=None if failure is None else "writes stopped (integrity failure)",
            witnesses=() if self.witnessing is None else self.witnessing.health(),
            pool=self.storage.pool_status(),
            database_errors=self.storage.failures(),
            now=self.writer.clock(),
        )

    def close(self) -> None:
        """Stop the writer and close the database."""
        if self.witnessing is not None:
            self.witnessing.stop()
        try:
            self.ledger.close()
        finally:
            self.storage.close()


class _StoredSource:
    """A read-only process's tree source: the stored tree and witnessed note.

    The witnessed checkpoint is served once proven, and read again at most
    every ``interval`` seconds, as the head is.
    """

    def __init__(self, tree: StoredTree, interval: float) -> None:
        self._tree = tree
        self._interval = interval
        self._looked = -math.inf
        self.witnessed: StoredWitnessed | None = None

    def tree(self) -> SignedTree:
        return self._tree.tree()

    def published(self) -> bytes | None:
        witnessed = self.witnessed
        if witnessed is None:
            return None
        now = time.monotonic()
        if now - self._looked >= self._interval:
            self._looked = now
            with contextlib.suppress(LedgerError):
                witnessed.refresh()
        return witnessed.published()


class ReadOnlyLog:
    """One record log's read side, over a database another process writes."""

    writer: RecordWriter | None = None

    def __init__(
        self,
        storage: SqlStorage,
        verifier_key: VerifierKey,
        origin: str,
        *,
        interval: float = 1.0,
        trusted: Sequence[Checkpoint] = (),
        cache_tiles: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.origin = origin
        self.verifier_key = verifier_key
        self._clock = clock
        cache = FullTileCache(cache_tiles)
        self.tree = StoredTree(
            storage, verifier_key, origin, cache, interval=interval, trusted=trusted
        )
        source = _StoredSource(self.tree, interval)
        self.reader = LogReader(storage, source, cache)
        # The writer's witnessed checkpoint, as the database has it: served
        # once proven (no witness is pinned here: observers check the
        # cosignatures against their own policy).
        self.witnessed = source.witnessed = StoredWitnessed(
            storage.witnessed,
            self.tree.tree,
            self.reader.consistency_proof,
            verifier_key,
            origin,
        )
        self.entries = EntryReader(self.reader, storage)
        self.registry = RegistryReader(self.reader, storage)

    def start(self) -> None:
        """Check the stored head before serving (see ``StoredTree``).

        Raises:
            IntegrityFailure: the stored head fails a check, or a registry
                record does not replay.
            StorageUnavailable: the database cannot be read.
        """
        self.tree.start()
        self.registry.election()  # replayed now, not in the first request
        with contextlib.suppress(LedgerError):
            self.witnessed.refresh()

    def witness_status(self) -> list[dict[str, object]]:
        """None here: cosignatures are collected by the writer's process."""
        return []

    def health(self) -> LogHealth:
        """A snapshot for readiness and metrics, of the head in the database.

        The stored head is looked at first when a look is due (at most every
        ``interval`` seconds, as for any read): a server asked for nothing but
        its readiness, as a load balancer does before it sends traffic, must
        judge the head the database holds now, not the one it loaded last.
        A database it cannot read leaves the last tree that passed, whose age
        then grows; a head that fails its checks stops the log.
        """
        with contextlib.suppress(LedgerError):
            self.tree.tree()
        tree, failed = self.tree.last()
        size = 0 if tree is None else tree.size
        try:
            published = self.reader.current().size
        except LedgerError:
            published = size
        return LogHealth(
            integrated_size=size,
            signed_at=0.0 if tree is None else tree.head.made_at_ms / 1000,
            published_size=published,
            queue_depth=0,
            stopped=None if failed is None else "the stored head failed its checks",
            pool=self.storage.pool_status(),
            database_errors=self.storage.failures(),
            writer=False,
            now=self._clock(),
        )

    def close(self) -> None:
        """Close the database."""
        self.storage.close()
