"""The sequencer: one writer thread that batches submissions (group commit).

Callers queue items of one type (a ``Submission`` of a record log, or entry
bytes) and get a future. The writer takes everything waiting (up to a bound),
asks the log's gate to decide each item in order (``ledger.gate``), assigns the
next indices to what it accepts, integrates the new leaves into the tree, signs
the new checkpoint and commits entries, index rows, new full tiles, the
checkpoint and the head in ONE transaction. Only then are the futures
resolved: an acknowledged entry is durable and provable.

Batching happens in two stages, on purpose: ``Ledger`` hands the writes made in
one turn of an event loop over in one call (one lock and one wake-up for all of
them, instead of one per request), and this thread takes every item waiting as
one batch (one transaction and one fsync for all of them). The first saves the
cross-thread hand-off per item, the second the commit per item.

Before the first write it runs the start-up checks (``ledger.startup``): it acts
only on what the signed tree proves, and every stored entry it acts on later
(the registry replayed at start, a repeat answered with its original entry) is
proven by an inclusion proof against the signed root first. A storage error
fails the batch (nothing acknowledged) and the state is reloaded (and the
writer lock taken again, if the database lost it) before the next one; an
integrity failure stops all writes until an operator intervenes.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from ledger.commit import Commit, Committed, Outcome, Pending, Ticket
from ledger.errors import (
    IntegrityFailure,
    LeaseLost,
    LedgerError,
    Pushback,
    SignerUnavailable,
    StorageUnavailable,
)
from ledger.gate import Accept, Decision, Existing, Gate, Refuse
from ledger.integrate import TreeState, integrate
from ledger.publisher import CheckpointPublisher
from ledger.read.proof_builder import FullTileCache, NodeReader, TileNodes
from ledger.read.tree import Prover, SignedTree, entry_prover
from ledger.seal import RecordsDigest, derive_seal_key, seal_head
from ledger.startup import (
    check_and_digest,
    recover_state,
    refuse_changed_guards,
    verify_records,
)
from ledger.storage.base import WriterStore
from ledger.storage.queue import QueueRow
from ledger.storage.rows import EntryRow, Head, RecordRow
from ledger.telemetry import WriterEvents
from ledger.trusted import rollback_problem
from verifier.checkpoint import Checkpoint
from verifier.rfc6962 import hash_leaf

__all__ = ["Outbox", "Sequencer", "SequencerConfig"]

log = logging.getLogger("saksi.sequencer")

T = TypeVar("T")

# How a queued item's outcome is stored (``ledger.cluster``): its queue id,
# then the entry index it got (None if refused), whether it was a repeat, and
# the refusal (None if logged).
Outbox = Callable[[int, int | None, bool, Exception | None], QueueRow]


@dataclass(frozen=True, slots=True)
class SequencerConfig:
    """Batching and pacing knobs."""

    max_batch: int = 8192
    max_batch_bytes: int = 32 << 20
    max_pending: int = 200_000
    checkpoint_interval: float = 10.0
    # Checkpoints kept outside the database (--trusted-checkpoint): the stored
    # tree must extend each, or the writer does not start (a rolled-back log).
    trusted: tuple[Checkpoint, ...] = ()


class Sequencer(Generic[T]):
    """Single writer: group commit of submissions, periodic checkpoint refresh.

    ``weigh(item)`` is an item's size in bytes, for the batch's byte bound.
    """

    def __init__(
        self,
        storage: WriterStore,
        publisher: CheckpointPublisher,
        clock: Callable[[], float],
        cache: FullTileCache,
        gate: Gate[T],
        weigh: Callable[[T], int],
        config: SequencerConfig | None = None,
        *,
        outbox: Outbox | None = None,
        leased: bool = False,
    ) -> None:
        self._storage = storage
        self._outbox = outbox
        # A cluster member's sequencer: its process took the lease already,
        # and keeps it (``ledger.cluster``); this one never takes or drops it.
        self._leased = leased
        self._gate = gate
        self._weigh = weigh
        self._publisher = publisher
        self._clock = clock
        self._cache = cache
        self._config = config or SequencerConfig()
        self._cond = threading.Condition()
        self._queue: deque[Pending[T]] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._failed: LedgerError | None = None
        self._needs_recovery = False
        self._tree: SignedTree | None = None
        # The running hash of the record index and the key that seals it.
        self._records = RecordsDigest()
        self._seal_key = b""
        # Who hears of each commit and failure (the service's metrics).
        self.events = WriterEvents()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Verify storage against the signed head, take the writer lock, run.

        Raises:
            IntegrityFailure: stored data does not rebuild the signed root.
            StorageUnavailable: database unreachable, or another writer runs.
        """
        meta = self._storage.meta()
        if meta.verifier_key != str(self._publisher.verifier_key):
            raise IntegrityFailure(
                "the log key does not match the key this log was created with"
            )
        if meta.origin != self._publisher.origin:
            raise IntegrityFailure("the configured origin differs from the log's")
        if not self._leased:
            self._storage.acquire_writer_lock()
        try:
            self._open(meta.origin)
        except Exception:
            if not self._leased:
                self._storage.release_writer_lock()
            raise
        self._thread = threading.Thread(
            target=self._run, name="saksi-sequencer", daemon=True
        )
        self._thread.start()

    def _open(self, origin: str) -> None:
        """Steps before the first write: the tree, the index's seal, the gate."""
        key = self._publisher.verifier_key
        state, head = recover_state(self._storage, key, origin)
        self._tree = SignedTree(head, state)
        reader = self._node_reader(state)
        for trusted in self._config.trusted:
            problem = rollback_problem(trusted, reader, state.root)
            if problem:
                raise IntegrityFailure(problem)
        self._seal_key = derive_seal_key(self._publisher.signer, origin)
        records = verify_records(self._storage, head, self._seal_key, origin)
        reseal, checked = records is None, False
        if records is None and head.size == 0:
            records = RecordsDigest()  # a new log: nothing stored to check
        elif records is None:
            records = check_and_digest(self._storage, key, origin, head)
            checked = True
        self._records = records
        self._gate.start(entry_prover(reader, state.size, state.root))
        if reseal:
            self._seal_now()
            if checked:
                log.warning(
                    "record index checked in full and sealed at size %d", head.size
                )

    def _node_reader(self, state: TreeState) -> NodeReader:
        return NodeReader(
            state.size, state.partials, self._storage.read_tile, self._cache
        )

    def prover(self, state: TreeState) -> Prover:
        """Proves stored entries against the signed tree ``state``."""
        return entry_prover(self._node_reader(state), state.size, state.root)

    def _seal(self, size: int, root: bytes, records: RecordsDigest) -> bytes:
        return seal_head(
            self._seal_key, self._publisher.origin, size, root, records.digest()
        )

    def _seal_now(self) -> None:
        """Seal the current head (a new log, or one the full check just passed)."""
        tree = self.tree()
        head = tree.head
        seal = self._seal(head.size, head.root, self._records)
        made_at = self._now_ms(head)
        self._storage.refresh_head(head, made_at, seal)
        self._tree = SignedTree(
            Head(head.size, head.root, head.note, made_at, seal), tree.state
        )

    def stop(self) -> None:
        """Finish queued work, then stop the writer thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if not self._leased:
            self._storage.release_writer_lock()

    def halt(self, error: IntegrityFailure) -> None:
        """Refuse every later write with ``error``.

        For an integrity failure found outside the writer (e.g. by witnessing).
        """
        self._stop_writes(error, [])

    def tree(self) -> SignedTree:
        """The last committed signed tree: its head and right edge, together.

        Raises:
            StorageUnavailable: the sequencer has not started.
        """
        tree = self._tree
        if tree is None:
            raise StorageUnavailable("sequencer not started")
        return tree

    @property
    def queue_depth(self) -> int:
        """Submissions waiting for the writer now."""
        return len(self._queue)

    @property
    def failure(self) -> IntegrityFailure | None:
        """Why writes are stopped, or None while the writer writes."""
        failed = self._failed
        return failed if isinstance(failed, IntegrityFailure) else None

    @property
    def lease_lost(self) -> bool:
        """True once another process took the lease: this writer is done."""
        return isinstance(self._failed, LeaseLost)

    @property
    def running(self) -> bool:
        """True while the writer thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def state(self) -> TreeState:
        """The last committed tree state."""
        return self.tree().state

    @property
    def head(self) -> Head:
        """The last committed signed head."""
        return self.tree().head

    # -- submission -------------------------------------------------------------

    def submit(
        self, items: Sequence[T], tags: Sequence[int] | None = None
    ) -> Future[list[Outcome]]:
        """Queue items; the future resolves, in order, once all are decided.

        ``tags``: the write queue's id of each item (``ledger.cluster``), whose
        outcome is then stored in the transaction that decides it.

        An item the gate refuses gets its exception as its outcome (the others
        go on); every other outcome is a ``Committed``. A large submission may
        be split over several commits; if one of them fails the future fails
        (entries already committed stay committed, and submitting them again
        returns their original indices).

        Raises:
            Pushback: the queue is full.
            IntegrityFailure: writes are stopped after an integrity failure.
            StorageUnavailable: the sequencer is not running.
        """
        ticket = Ticket(len(items))
        if not items:
            ticket.future.set_result([])
            return ticket.future
        weigh = self._weigh
        if tags is None:
            pending = [
                Pending(item, ticket, slot, weigh(item))
                for slot, item in enumerate(items)
            ]
        else:
            pending = [
                Pending(item, ticket, slot, weigh(item), tag)
                for slot, (item, tag) in enumerate(zip(items, tags, strict=True))
            ]
        with self._cond:
            if self._failed is not None:
                raise self._failed
            if self._stopping or self._thread is None:
                raise StorageUnavailable("the sequencer is not running")
            if len(self._queue) + len(pending) > self._config.max_pending:
                raise Pushback(
                    "too many appends waiting; retry shortly", retry_after=1.0
                )
            self._queue.extend(pending)
            self._cond.notify()
        return ticket.future

    # -- writer thread ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    wait = self._refresh_due_in()
                    if wait <= 0:
                        break
                    self._cond.wait(timeout=wait)
                if self._stopping and not self._queue:
                    return
                batch = self._take_batch()
            try:
                if self._needs_recovery:
                    self._recover()
                if batch:
                    self._commit(batch)
                else:
                    self._refresh()
            except IntegrityFailure as e:
                log.error("integrity failure; writes stopped: %s", e)
                self._report_failure(e.cause)
                self._stop_writes(e, batch)
                return
            except LeaseLost as e:
                log.warning("sequencer lease lost; this writer stops: %s", e)
                self._stop_writes(e, batch)
                return
            except LedgerError as e:
                log.warning("batch of %d not committed: %s", len(batch), e)
                self._report_failure(e.cause)
                self._needs_recovery = True
                for p in batch:
                    p.ticket.fail(e)
                if not batch:
                    with self._cond:
                        self._cond.wait(timeout=1.0)
            except Exception as e:  # a bug: stop, never leave callers waiting
                log.exception("the writer failed; writes stopped")
                self._report_failure(IntegrityFailure.cause)
                self._stop_writes(
                    IntegrityFailure(
                        f"the writer failed unexpectedly ({type(e).__name__}); "
                        "writes stopped"
                    ),
                    batch,
                )
                return

    def _report_failure(self, cause: str) -> None:
        try:
            self.events.failed(cause)
        except Exception:  # a report never stops the writer
            log.exception("reporting a failure failed")

    def _stop_writes(self, error: LedgerError, batch: list[Pending[T]]) -> None:
        """Refuse every later write with ``error``; fail what is waiting."""
        with self._cond:
            self._failed = error
            stranded = list(self._queue)
            self._queue.clear()
        for p in [*batch, *stranded]:
            p.ticket.fail(error)

    def _refresh_due_in(self) -> float:
        tree = self._tree
        if tree is None:
            return self._config.checkpoint_interval
        age = self._clock() - tree.head.made_at_ms / 1000
        return self._config.checkpoint_interval - age

    def _take_batch(self) -> list[Pending[T]]:
        batch: list[Pending[T]] = []
        size = 0
        while self._queue and len(batch) < self._config.max_batch:
            weight = self._queue[0].weight
            if batch and size + weight > self._config.max_batch_bytes:
                break
            batch.append(self._queue.popleft())
            size += weight
        return batch

    def _recover(self) -> None:
        # After a failed commit: the head may or may not have moved (a commit
        # whose answer was lost). Whatever it is now, it must carry the seal of
        # the index this writer knows, extended by the rows it finds after it.
        # A database that failed may have restarted and dropped the writer lock.
        self._storage.keep_writer_lock()
        origin = self._publisher.origin
        known = self._records
        state, head = recover_state(self._storage, self._publisher.verifier_key, origin)
        records = known.copy()
        records.feed_many(self._storage.scan_records(head.size, records.count))
        if head.seal is None or not hmac.compare_digest(
            self._seal(head.size, head.root, records), head.seal
        ):
            raise IntegrityFailure(
                f"the head at size {head.size} does not carry this writer's seal"
            )
        self._tree, self._records = SignedTree(head, state), records
        self._needs_recovery = False

    def _now_ms(self, previous: Head) -> int:
        # Strictly increasing checkpoint times, even if the clock steps back.
        return max(int(self._clock() * 1000), previous.made_at_ms + 1)

    def _sign(self, size: int, root: bytes) -> bytes:
        try:
            return self._publisher.sign(size, root)
        except Exception as e:
            raise SignerUnavailable(
                f"checkpoint signing failed ({type(e).__name__})"
            ) from e

    def _commit(self, batch: list[Pending[T]]) -> None:
        gate = self._gate
        tree = self.tree()
        state, head = tree.state, tree.head
        now_ms = self._now_ms(head)
        decisions = gate.admit([p.item for p in batch], state.size, now_ms)
        rows: list[EntryRow] = []
        index = state.size
        for decision in decisions:
            if type(decision) is Accept:
                leaf_hash = decision.leaf_hash or hash_leaf(decision.entry)
                rows.append(EntryRow(index, leaf_hash, decision.entry))
                index += 1
        try:
            existing = self._proven_existing(state, decisions)
            decided = self._decided(batch, decisions, state.size)
            committed = self._write(state, head, rows, gate.rows(), now_ms, decided)
        except BaseException:
            gate.finish(committed=False)
            raise
        gate.finish(committed=True)
        position = 0
        for p, decision in zip(batch, decisions, strict=True):
            if isinstance(decision, Accept):
                row = rows[position]
                position += 1
                p.ticket.settle(
                    p.slot,
                    Committed(row.index, row.leaf_hash, False, committed, row.data),
                )
            elif isinstance(decision, Existing):
                if decision.index >= state.size:
                    own = rows[decision.index - state.size]
                    leaf_hash, data = own.leaf_hash, own.data
                else:
                    leaf_hash, data = existing[decision.index]
                p.ticket.settle(
                    p.slot,
                    Committed(decision.index, leaf_hash, True, committed, data),
                )
            else:
                p.ticket.settle(p.slot, decision.error)

    def _decided(
        self, batch: list[Pending[T]], decisions: Sequence[Decision], first: int
    ) -> list[QueueRow]:
        """The stored outcomes of the batch's queued items (``ledger.cluster``)."""
        outbox = self._outbox
        if outbox is None:
            return []
        out: list[QueueRow] = []
        index = first
        for p, decision in zip(batch, decisions, strict=True):
            tag = p.tag
            if type(decision) is Accept:
                if tag is not None:
                    out.append(outbox(tag, index, False, None))
                index += 1
            elif tag is None:
                continue
            elif isinstance(decision, Existing):
                out.append(outbox(tag, decision.index, True, None))
            elif isinstance(decision, Refuse):
                out.append(outbox(tag, None, False, decision.error))
        return out

    def _proven_existing(
        self, state: TreeState, decisions: Sequence[Decision]
    ) -> dict[int, tuple[bytes, bytes]]:
        """The stored entries the batch answers repeats with, each proven first.

        Raises:
            IntegrityFailure: an entry is missing, or not the one the signed
                tree holds (nothing of the batch is written).
        """
        # A repeat of a record accepted earlier in this batch is answered with
        # the batch's own row; only older entries are read back.
        wanted = sorted(
            {d.index for d in decisions if type(d) is Existing and d.index < state.size}
        )
        if not wanted:
            return {}
        stored = {row.index: row.data for row in self._storage.read_entries_at(wanted)}
        prove = self.prover(state)
        proven: dict[int, tuple[bytes, bytes]] = {}
        for index in wanted:
            data = stored.get(index)
            if data is None or not 0 <= index < state.size:
                raise IntegrityFailure(
                    f"entry {index}, which the record index names, is not stored"
                )
            proven[index] = (prove(index, data), data)
        for decision in decisions:
            if (
                isinstance(decision, Existing)
                and decision.index in proven
                and decision.holds is not None
                and not decision.holds(proven[decision.index][1])
            ):
                raise IntegrityFailure(
                    f"entry {decision.index}, which the index names for a "
                    "repeat, does not hold what was submitted"
                )
        return proven

    def _write(
        self,
        state: TreeState,
        head: Head,
        rows: list[EntryRow],
        record_rows: Sequence[RecordRow] = (),
        logged_ms: int = 0,
        decided: Sequence[QueueRow] = (),
    ) -> Commit:
        """Commit ``rows`` as the next leaves, with a newly signed checkpoint.

        The checkpoint's time is no earlier than ``logged_ms``, the time the
        entries carry (RFC 6962 §3.5: a tree head is at least as new as every
        entry in it), even if the clock stepped back since they were admitted.
        ``decided``: outcomes of queued items, stored in the same transaction.
        """
        if not rows:
            self._storage.settle_queue(decided)
            return Commit(state, head, state.size, [])
        started = time.perf_counter()
        hashes = [r.leaf_hash for r in rows]
        new_state, full_tiles = integrate(state, hashes)
        records = self._records.copy()
        records.update(record_rows)

        def make_head() -> Head:
            # Called inside the transaction, once the entries are in: a tree
            # that is not stored is never signed.
            note = self._sign(new_state.size, new_state.root)
            seal = self._seal(new_state.size, new_state.root, records)
            made_at = max(self._now_ms(head), logged_ms)
            return Head(new_state.size, new_state.root, note, made_at, seal)

        new_head = self._storage.commit_batch(
            state.size, rows, full_tiles, make_head, record_rows, decided
        )
        for tile in full_tiles:
            nodes = (
                TileNodes.from_levels(tile.nodes)
                if tile.nodes
                else TileNodes.from_bytes(tile.hashes)
            )
            self._cache.put(tile.level, tile.index, nodes)
        self._tree, self._records = SignedTree(new_head, new_state), records
        try:
            self.events.committed(len(rows), time.perf_counter() - started)
        except Exception:  # a report never stops the writer
            log.exception("reporting a commit failed")
        return Commit(new_state, new_head, state.size, hashes, state.compact.hashes)

    def _refresh(self) -> None:
        # While idle, the guards are looked at again: an administrator who
        # drops a trigger to edit rows stops the writes within an interval.
        # So is the writer lock: a database restart the pool hid drops it.
        self._storage.keep_writer_lock()
        refuse_changed_guards(self._storage)
        head = self.head
        note = self._sign(head.size, head.root)
        if note != head.note:
            log.warning(
                "re-signed checkpoint differs from the stored one; keeping stored"
            )
        made_at = self._now_ms(head)
        self._storage.refresh_head(head, made_at)
        self._tree = SignedTree(
            Head(head.size, head.root, head.note, made_at, head.seal), self.state
        )
