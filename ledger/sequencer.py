"""The sequencer: one writer thread that batches appends (group commit).

Callers enqueue entry bytes and get a future. The writer takes everything waiting
(up to a bound), drops duplicates (identical bytes get the original index), assigns
the next indices, integrates the new leaves into the tree, signs the new checkpoint
and commits entries, new full tiles, the checkpoint and the head in ONE transaction.
Only then are the futures resolved: an acknowledged entry is durable and provable.

On start it acts only on what the signed tree proves: it rebuilds the tree's
right edge from stored tiles and refuses to write unless that rebuilds the last
signed root; it refuses a database whose append-only triggers were dropped or
changed, or that holds rows beyond the head; it recomputes the record index's
running hash and checks the writer's seal over it (``ledger.seal``), running the
full check once where there is no seal or it does not match; and every stored
entry it acts on later (the registry replayed at start, a repeat answered with
its original entry) is proven by an inclusion proof against the signed root
first. A storage error fails the batch (nothing acknowledged) and the state is
reloaded before the next one; an integrity failure stops all writes until an
operator intervenes.
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
from typing import Protocol

from ledger.check import check_log
from ledger.checkpoint import CheckpointPublisher
from ledger.errors import (
    EntryTooLarge,
    IntegrityFailure,
    LedgerError,
    Pushback,
    SignerUnavailable,
    StorageUnavailable,
)
from ledger.integrate import TreeState, integrate
from ledger.read.proofs import (
    FullTileCache,
    NodeReader,
    RunPaths,
    TileNodes,
    build_inclusion_proof,
)
from ledger.seal import RecordsDigest, derive_seal_key, seal_head
from ledger.storage.rows import EntryRow, Head, RecordRow
from ledger.storage.sql import SqlStorage
from ledger.tree.compact import perfect_root
from ledger.tree.tiles import TILE_WIDTH, level_width
from ledger.trusted import rollback_problem
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.errors import VerificationError
from verifier.merkle import verify_inclusion
from verifier.note import VerifierKey
from verifier.rfc6962 import hash_leaf
from verifier.tiles import MAX_ENTRY_SIZE

__all__ = [
    "Accept",
    "Commit",
    "Committed",
    "Decision",
    "Existing",
    "Gate",
    "Refuse",
    "Sequencer",
    "SequencerConfig",
    "recover_state",
    "verify_records",
]

log = logging.getLogger("saksi.sequencer")


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


class Commit:
    """One committed batch: the tree and signed head it produced, and its new leaves.

    Shared by every entry of the batch; ``paths`` is filled in lazily by whoever
    first builds the batch's receipts.
    """

    __slots__ = ("first", "head", "leaf_hashes", "left_edge", "paths", "state")

    def __init__(
        self,
        state: TreeState,
        head: Head,
        first: int,
        leaf_hashes: list[bytes],
        left_edge: tuple[bytes, ...] | None = None,
    ) -> None:
        self.state = state
        self.head = head
        self.first = first
        self.leaf_hashes = leaf_hashes
        # The compact range of the tree before this commit (``first`` leaves):
        # every node left of the new leaves' proofs, with no hashing to find them.
        self.left_edge = left_edge
        self.paths: RunPaths | None = None


class Committed:
    """Where one entry is, and the commit (tree and signed head) it is answered in."""

    __slots__ = ("commit", "data", "duplicate", "index", "leaf_hash")

    def __init__(
        self,
        index: int,
        leaf_hash: bytes,
        duplicate: bool,
        commit: Commit,
        data: bytes = b"",
    ) -> None:
        self.index = index
        self.leaf_hash = leaf_hash
        self.duplicate = duplicate
        self.commit = commit
        self.data = data

    @property
    def state(self) -> TreeState:
        """The tree the entry was answered in."""
        return self.commit.state

    @property
    def head(self) -> Head:
        """The signed head of that tree."""
        return self.commit.head


class _Ticket:
    """One ``submit`` call: its results fill in as commits land, then resolve."""

    __slots__ = ("future", "remaining", "results")

    def __init__(self, count: int) -> None:
        self.future: Future[list[Outcome]] = Future()
        self.remaining = count
        self.results: list[Outcome | None] = [None] * count

    def settle(self, slot: int, outcome: Outcome) -> None:
        self.results[slot] = outcome
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(self.results)  # type: ignore[arg-type]

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


Outcome = Committed | Exception


class _Pending:
    __slots__ = ("data", "leaf_hash", "slot", "ticket")

    def __init__(
        self,
        data: object,
        leaf_hash: bytes,
        ticket: _Ticket,
        slot: int,
    ) -> None:
        self.data = data
        self.leaf_hash = leaf_hash
        self.ticket = ticket
        self.slot = slot


@dataclass(frozen=True, slots=True)
class Accept:
    """The gate accepts an item: append these entry bytes."""

    entry: bytes


@dataclass(frozen=True, slots=True)
class Existing:
    """The item is already logged at ``index``: answer with that entry."""

    index: int


@dataclass(frozen=True, slots=True)
class Refuse:
    """The item is refused; its caller gets ``error`` and nothing is written."""

    error: Exception


Decision = Accept | Existing | Refuse


class Gate(Protocol):
    """Decides, in the writer thread and in order, what each submitted item becomes.

    ``admit`` sees a whole batch; items it accepts get consecutive indices from
    ``first_index`` in order. ``rows`` are written in the batch's transaction;
    ``finish`` says whether that transaction committed.
    """

    def admit(
        self, items: Sequence[object], first_index: int, now_ms: int
    ) -> list[Decision]:
        """One decision per item."""
        ...

    def rows(self) -> Sequence[RecordRow]:
        """Index rows for the accepted items of the last ``admit``."""
        ...

    def finish(self, committed: bool) -> None:
        """Keep (committed) or undo the effects of the last ``admit``."""
        ...

    def start(self, prove: Prover) -> None:
        """Load what the gate decides with, from entries proven by ``prove``."""
        ...


class Prover(Protocol):
    """Checks stored entry bytes against the signed tree; returns the leaf hash."""

    def __call__(self, index: int, data: bytes) -> bytes:
        """The leaf hash of ``data`` as entry ``index``, proven.

        Raises:
            IntegrityFailure: the signed tree does not hold ``data`` there.
        """
        ...


def refuse_changed_guards(storage: SqlStorage) -> None:
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
    storage: SqlStorage, verifier_key: VerifierKey, origin: str
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
    head = storage.head()
    try:  # (2)
        checkpoint, _ = verify_checkpoint(head.note, verifier_key, origin)
    except VerificationError as e:
        raise IntegrityFailure(f"stored tree head is not validly signed: {e}") from e
    if checkpoint.size != head.size or checkpoint.root_hash != head.root:
        raise IntegrityFailure("stored tree head does not match its signed checkpoint")
    stored = storage.checkpoint(head.size)
    if stored is None or (stored.root, stored.note) != (head.root, head.note):
        raise IntegrityFailure(
            f"the checkpoint stored at size {head.size} is "
            + ("missing" if stored is None else "not the signed head")
        )
    try:
        state = _rebuild_edge(storage, head)  # (3), (4)
    except IntegrityFailure as e:
        raise IntegrityFailure(f"{e}{_located(storage, verifier_key, origin)}") from e
    size = head.size
    beyond = storage.beyond(size)  # (5)
    if beyond:
        raise IntegrityFailure("; ".join(beyond))
    return state, head


def _rebuild_edge(storage: SqlStorage, head: Head) -> TreeState:
    """The tree's right edge from stored entries and tiles; it must give the root.

    Raises:
        IntegrityFailure: a stored hash is missing or wrong, or the root differs.
    """
    size = head.size
    partials: list[list[bytes]] = []
    level = 0
    while level_width(size, level):
        width = level_width(size, level)
        start = width - width % TILE_WIDTH
        if level == 0:
            rows = storage.read_entries(start, width)
            for offset, row in enumerate(rows):
                if row.index != start + offset or hash_leaf(row.data) != row.leaf_hash:
                    raise IntegrityFailure(
                        f"entry {start + offset} does not match its stored leaf hash"
                    )
            hashes = [row.leaf_hash for row in rows]
        else:
            tile_rows = storage.read_tile_rows(level - 1, start, width)
            hashes = []
            for offset, (index, data, root) in enumerate(tile_rows):
                if (
                    index != start + offset
                    or perfect_root([data[i : i + 32] for i in range(0, len(data), 32)])
                    != root
                ):
                    raise IntegrityFailure(
                        f"tile {level - 1}/{start + offset} does not match its root"
                    )
                hashes.append(root)
        if len(hashes) != width - start:
            raise IntegrityFailure(
                f"level {level}: expected {width - start} stored hashes after "
                f"index {start}, found {len(hashes)}"
            )
        partials.append(hashes)
        level += 1
    state = TreeState.from_partials(size, partials)
    if state.root != head.root:
        raise IntegrityFailure(
            f"stored tiles rebuild root {state.root.hex()}, "
            f"signed root is {head.root.hex()} at size {size}"
        )
    return state


def _located(storage: SqlStorage, verifier_key: VerifierKey, origin: str) -> str:
    """Where the full check finds the first difference (run only on a failure)."""
    report = check_log(storage, verifier_key, origin)
    if report.ok:
        return ""
    return f"; the full check finds: {report.problems[0].message}"


def verify_records(
    storage: SqlStorage, head: Head, key: bytes, origin: str
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
    storage: SqlStorage, verifier_key: VerifierKey, origin: str, head: Head
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


class Sequencer:
    """Single writer: group commit of appends, periodic checkpoint refresh."""

    def __init__(
        self,
        storage: SqlStorage,
        publisher: CheckpointPublisher,
        clock: Callable[[], float],
        cache: FullTileCache,
        config: SequencerConfig | None = None,
        gate: Gate | None = None,
    ) -> None:
        self._storage = storage
        self._gate = gate
        self._publisher = publisher
        self._clock = clock
        self._cache = cache
        self._config = config or SequencerConfig()
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._failed: LedgerError | None = None
        self._needs_recovery = False
        self._state = TreeState.empty()
        self._head: Head | None = None
        # The running hash of the record index and the key that seals it.
        self._records = RecordsDigest()
        self._seal_key = b""

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
        self._storage.acquire_writer_lock()
        try:
            self._open(meta.origin)
        except Exception:
            self._storage.release_writer_lock()
            raise
        self._thread = threading.Thread(
            target=self._run, name="saksi-sequencer", daemon=True
        )
        self._thread.start()

    def _open(self, origin: str) -> None:
        """Steps before the first write: the tree, the index's seal, the gate."""
        key = self._publisher.verifier_key
        self._state, self._head = recover_state(self._storage, key, origin)
        reader = self._node_reader(self._state)
        for trusted in self._config.trusted:
            problem = rollback_problem(trusted, reader, self._state.root)
            if problem:
                raise IntegrityFailure(problem)
        self._seal_key = derive_seal_key(self._publisher.signer, origin)
        records = verify_records(self._storage, self._head, self._seal_key, origin)
        reseal, checked = records is None, False
        if records is None and self._head.size == 0:
            records = RecordsDigest()  # a new log: nothing stored to check
        elif records is None:
            records = check_and_digest(self._storage, key, origin, self._head)
            checked = True
        self._records = records
        if self._gate is not None:
            self._gate.start(self._prover(reader, self._state))
        if reseal:
            self._seal_now()
            if checked:
                log.warning(
                    "record index checked in full and sealed at size %d",
                    self._head.size,
                )

    def _node_reader(self, state: TreeState) -> NodeReader:
        return NodeReader(
            state.size, state.partials, self._storage.read_tile, self._cache
        )

    def prover(self, state: TreeState) -> Prover:
        """Proves stored entries against the signed tree ``state``."""
        return self._prover(self._node_reader(state), state)

    @staticmethod
    def _prover(reader: NodeReader, state: TreeState) -> Prover:
        def prove(index: int, data: bytes) -> bytes:
            leaf = hash_leaf(data)
            try:
                proof = build_inclusion_proof(reader, index, state.size)
                verify_inclusion(index, state.size, leaf, proof, state.root)
            except (VerificationError, LedgerError) as e:
                raise IntegrityFailure(
                    f"entry {index} as stored is not the entry the signed tree "
                    f"holds at size {state.size}: {e}"
                ) from e
            return leaf

        return prove

    def _seal(self, size: int, root: bytes, records: RecordsDigest) -> bytes:
        return seal_head(
            self._seal_key, self._publisher.origin, size, root, records.digest()
        )

    def _seal_now(self) -> None:
        """Seal the current head (a new log, or one the full check just passed)."""
        head = self.head
        seal = self._seal(head.size, head.root, self._records)
        made_at = self._now_ms(head)
        self._storage.refresh_head(head, made_at, seal)
        self._head = Head(head.size, head.root, head.note, made_at, seal)

    def stop(self) -> None:
        """Finish queued work, then stop the writer thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._storage.release_writer_lock()

    def halt(self, error: IntegrityFailure) -> None:
        """Refuse every later write with ``error``.

        For an integrity failure found outside the writer (e.g. by witnessing).
        """
        with self._cond:
            self._failed = error
            stranded = list(self._queue)
            self._queue.clear()
        for p in stranded:
            p.ticket.fail(error)

    @property
    def state(self) -> TreeState:
        """The last committed tree state."""
        return self._state

    @property
    def head(self) -> Head:
        """The last committed signed head."""
        if self._head is None:
            raise StorageUnavailable("sequencer not started")
        return self._head

    # -- submission -------------------------------------------------------------

    def submit(self, entries: Sequence[object]) -> Future[list[Outcome]]:
        """Queue items; the future resolves, in order, once all are decided.

        Without a gate the items are entry bytes and every outcome is a
        ``Committed``. With a gate they are whatever the gate takes, and an
        item it refuses gets its exception as its outcome (the others go on).
        A large submission may be split over several commits; if one of them
        fails the future fails (entries already committed stay committed, and
        submitting them again returns their original indices).

        Raises:
            EntryTooLarge: an entry exceeds 65,535 bytes (nothing is queued).
            Pushback: the queue is full.
            IntegrityFailure: writes are stopped after an integrity failure.
        """
        if self._gate is None:
            for data in entries:
                if not isinstance(data, bytes):
                    raise TypeError("entries must be bytes")
                if len(data) > MAX_ENTRY_SIZE:
                    raise EntryTooLarge(
                        f"entry of {len(data)} bytes exceeds the "
                        f"{MAX_ENTRY_SIZE}-byte limit"
                    )
        ticket = _Ticket(len(entries))
        if not entries:
            ticket.future.set_result([])
            return ticket.future
        if self._gate is None:
            pending = [
                _Pending(d, hash_leaf(d), ticket, slot)
                for slot, d in enumerate(entries)
                if isinstance(d, bytes)
            ]
        else:
            pending = [_Pending(d, b"", ticket, slot) for slot, d in enumerate(entries)]
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
                with self._cond:
                    self._failed = e
                    stranded = list(self._queue)
                    self._queue.clear()
                for p in [*batch, *stranded]:
                    p.ticket.fail(e)
                return
            except LedgerError as e:
                log.warning("batch of %d not committed: %s", len(batch), e)
                self._needs_recovery = True
                for p in batch:
                    p.ticket.fail(e)
                if not batch:
                    with self._cond:
                        self._cond.wait(timeout=1.0)

    def _refresh_due_in(self) -> float:
        if self._head is None:
            return self._config.checkpoint_interval
        age = self._clock() - self._head.made_at_ms / 1000
        return self._config.checkpoint_interval - age

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        size = 0
        while self._queue and len(batch) < self._config.max_batch:
            item = self._queue[0]
            weight = len(item.data) if isinstance(item.data, bytes) else 1024
            if batch and size + weight > self._config.max_batch_bytes:
                break
            batch.append(self._queue.popleft())
            size += weight
        return batch

    def _recover(self) -> None:
        # After a failed commit: the head may or may not have moved (a commit
        # whose answer was lost). Whatever it is now, it must carry the seal of
        # the index this writer knows, extended by the rows it finds after it.
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
        self._state, self._head, self._records = state, head, records
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

    def _commit(self, batch: list[_Pending]) -> None:
        if self._gate is not None:
            self._commit_gated(batch, self._gate)
            return
        state, head = self._state, self.head
        found = self._storage.find_leaf_hashes([p.leaf_hash for p in batch])
        for index in found.values():
            if index >= state.size:
                raise IntegrityFailure(
                    f"entry {index} is stored beyond the signed size"
                )
        assigned: dict[bytes, int] = dict(found)
        rows: list[EntryRow] = []
        for p in batch:
            if p.leaf_hash not in assigned:
                assigned[p.leaf_hash] = state.size + len(rows)
                data = p.data if isinstance(p.data, bytes) else b""  # submit checked
                rows.append(EntryRow(state.size + len(rows), p.leaf_hash, data))
        committed = self._write(state, head, rows)
        answered: set[bytes] = set()
        for p in batch:
            index = assigned[p.leaf_hash]
            duplicate = index < state.size or p.leaf_hash in answered
            answered.add(p.leaf_hash)
            data = p.data if isinstance(p.data, bytes) else b""
            p.ticket.settle(
                p.slot, Committed(index, p.leaf_hash, duplicate, committed, data)
            )

    def _commit_gated(self, batch: list[_Pending], gate: Gate) -> None:
        state, head = self._state, self.head
        now_ms = self._now_ms(head)
        decisions = gate.admit([p.data for p in batch], state.size, now_ms)
        rows: list[EntryRow] = []
        for decision in decisions:
            if isinstance(decision, Accept):
                leaf_hash = hash_leaf(decision.entry)
                rows.append(EntryRow(state.size + len(rows), leaf_hash, decision.entry))
        try:
            existing = self._proven_existing(state, decisions)
            committed = self._write(state, head, rows, gate.rows())
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
            {d.index for d in decisions if isinstance(d, Existing)}
            - set(range(state.size, state.size + len(decisions)))
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
        return proven

    def _write(
        self,
        state: TreeState,
        head: Head,
        rows: list[EntryRow],
        record_rows: Sequence[RecordRow] = (),
    ) -> Commit:
        """Commit ``rows`` as the next leaves, with a newly signed checkpoint."""
        if not rows:
            return Commit(state, head, state.size, [])
        hashes = [r.leaf_hash for r in rows]
        new_state, full_tiles = integrate(state, hashes)
        records = self._records.copy()
        records.update(record_rows)

        def make_head() -> Head:
            # Called inside the transaction, once the entries are in: a tree
            # that is not stored is never signed.
            note = self._sign(new_state.size, new_state.root)
            seal = self._seal(new_state.size, new_state.root, records)
            return Head(new_state.size, new_state.root, note, self._now_ms(head), seal)

        new_head = self._storage.commit_batch(
            state.size, rows, full_tiles, make_head, record_rows
        )
        for tile in full_tiles:
            nodes = (
                TileNodes.from_levels(tile.nodes)
                if tile.nodes
                else TileNodes.from_bytes(tile.hashes)
            )
            self._cache.put(tile.level, tile.index, nodes)
        self._state, self._head, self._records = new_state, new_head, records
        return Commit(new_state, new_head, state.size, hashes, state.compact.hashes)

    def _refresh(self) -> None:
        # While idle, the guards are looked at again: an administrator who
        # drops a trigger to edit rows stops the writes within an interval.
        refuse_changed_guards(self._storage)
        head = self.head
        note = self._sign(head.size, head.root)
        if note != head.note:
            log.warning(
                "re-signed checkpoint differs from the stored one; keeping stored"
            )
        made_at = self._now_ms(head)
        self._storage.refresh_head(head, made_at)
        self._head = Head(head.size, head.root, head.note, made_at, head.seal)
