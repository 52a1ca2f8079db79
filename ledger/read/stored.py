"""The signed tree of a log that another process writes (``saksi serve --read-only``).

``StoredTree`` is a ``TreeSource`` read from the database alone: no writer, no
signing key, no writer's lock. Each time it looks (at most every ``interval``
seconds, and only when the head row changed) it acts only on what the log key
proves:

1. the head row's note is a checkpoint of this log signed by the log key, for
   the head's size and root, and the checkpoint stored at that size is the same;
2. the stored entries and tiles of the tree's right edge rebuild that root;
3. the new tree is at least as large as the last one it served, and consistent
   with it (a consistency proof built from the stored tiles, checked);
4. with trusted checkpoints (``--trusted-checkpoint``), it extends each of them.

A head at most ``EXTEND_MAX`` entries past the last tree that passed is
checked for (2) and (3) at once and for less: the entries added since are
read, each re-hashed, and appended to the last tree's edge; the result must
be the signed root. It is then the last tree plus exactly those entries,
consistent with it by construction, and the tiles that filled up on the way
are computed here (and cached for proofs) rather than read. Rebuilding the
edge instead re-hashes up to 255 stored tiles a level: tens of thousands of
hashes a look, every commit, in every process that serves the log.

A head that fails (1) to (4) is never served: the reader keeps answering from
the last tree that passed and every later look raises ``IntegrityFailure``
(a rolled-back or edited database does not heal). Cosignatures are kept only
in the writer's memory, so a read-only process publishes the latest signed
checkpoint, not a witnessed one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from ledger.errors import IntegrityFailure, OutOfRange
from ledger.integrate import TreeState, integrate
from ledger.read.proof_builder import (
    FullTileCache,
    NodeReader,
    TileNodes,
    build_consistency_proof,
)
from ledger.read.tree import SignedTree, proven_leaves, rebuild_edge, signed_head
from ledger.storage.base import LogStore
from ledger.storage.rows import Head
from ledger.trusted import rollback_problem
from verifier.checkpoint import Checkpoint
from verifier.errors import VerificationError
from verifier.note import VerifierKey
from verifier.proof_check import verify_consistency

__all__ = ["StoredTree"]

log = logging.getLogger("saksi.reader")

# A head at most this many entries past the last tree that passed is checked
# by growing that tree (its entries read and re-hashed), not by rebuilding the
# edge: about what one rebuild costs, and more than one commit holds.
EXTEND_MAX = 16_384


class StoredTree:
    """The latest signed tree in the database, checked before it is served."""

    def __init__(
        self,
        store: LogStore,
        verifier_key: VerifierKey,
        origin: str,
        cache: FullTileCache,
        *,
        interval: float = 1.0,
        trusted: Sequence[Checkpoint] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._key = verifier_key
        self._origin = origin
        self._cache = cache
        self._interval = interval
        self._trusted = tuple(trusted)
        self._clock = clock
        self._lock = threading.Lock()
        self._tree: SignedTree | None = None
        self._looked = 0.0
        self._failed: IntegrityFailure | None = None
        # The entries the last look grew the tree by (proven: they gave the
        # signed root), for receipts of the writes they hold (``grown``).
        self._grown: tuple[int, list[bytes]] = (0, [])

    def start(self) -> SignedTree:
        """Look at the database now (the first tree must pass before serving).

        Raises:
            IntegrityFailure: the stored head fails a check.
            StorageUnavailable: the database cannot be read.
        """
        with self._lock:
            return self._look(self._clock())

    def refresh(self) -> SignedTree:
        """Look at the database now, whatever the interval (see ``tree``).

        Raises:
            IntegrityFailure: a stored head failed a check (now or before).
            StorageUnavailable: the database cannot be read.
        """
        with self._lock:
            if self._failed is not None:
                raise self._failed
            return self._look(self._clock())

    def tree(self) -> SignedTree:
        """The latest signed tree that passed, looked for again when it is due.

        Never waits for another thread's look: while one is under way, the
        last tree that passed is the answer (the event loop asks this).

        Raises:
            IntegrityFailure: a stored head failed a check (now or before).
            StorageUnavailable: the database cannot be read.
        """
        now = self._clock()
        failed, tree = self._failed, self._tree  # no lock: each read is atomic
        if failed is not None:
            raise failed
        if tree is not None and now - self._looked < self._interval:
            return tree
        # A look under way in another thread (database reads, a signature and
        # a consistency proof) is not waited for: the last tree that passed
        # serves meanwhile. Callers that need a newer tree call ``refresh``.
        if tree is not None and not self._lock.acquire(blocking=False):
            return tree
        if tree is None:
            self._lock.acquire()
        try:
            if self._failed is not None:
                raise self._failed
            if self._tree is not None and now - self._looked < self._interval:
                return self._tree
            return self._look(now)
        finally:
            self._lock.release()

    def last(self) -> tuple[SignedTree | None, IntegrityFailure | None]:
        """The last tree that passed and the failure that stopped serving, if any.

        No database read and no wait: for health checks, metrics and the
        event loop. A look under way holds the lock; each attribute is read
        whole, the tree only moves forward and a failure is set once.
        """
        return self._tree, self._failed

    def grown(self, indices: Sequence[int]) -> dict[int, bytes]:
        """Those of ``indices`` the last look read and proved, with their bytes.

        No database read: the entries that grew the tree to the last head
        that passed (each re-hashed into its signed root).
        """
        first, data = self._grown
        return {i: data[i - first] for i in indices if 0 <= i - first < len(data)}

    def published(self) -> bytes | None:
        """None: cosignatures live in the writer's process only."""
        return None

    def _look(self, now: float) -> SignedTree:
        head = self._store.head()
        known = self._tree
        self._looked = now
        if known is not None and (head.size, head.root, head.note) == (
            known.head.size,
            known.head.root,
            known.head.note,
        ):
            # The same tree, re-signed in time only: keep the checked edge.
            if head.made_at_ms != known.head.made_at_ms:
                self._tree = SignedTree(head, known.state)
            return self._tree or known
        try:
            tree = self._checked()
        except IntegrityFailure as e:
            log.error("the stored head fails its checks; serving stops: %s", e)
            self._failed = e
            raise
        self._tree = tree
        return tree

    def _checked(self) -> SignedTree:
        head = signed_head(self._store, self._key, self._origin)  # (1)
        known = self._tree
        if known is not None and known.size < head.size <= known.size + EXTEND_MAX:
            state = self._extended(known.state, head)  # (2) and (3)
        else:
            state = self._rebuilt(head)
        if self._trusted:  # (4)
            reader = NodeReader(
                state.size, state.partials, self._store.read_tile, self._cache
            )
            for trusted in self._trusted:
                problem = rollback_problem(trusted, reader, state.root)
                if problem:
                    raise IntegrityFailure(problem)
        return SignedTree(head, state)

    def _extended(self, known: TreeState, head: Head) -> TreeState:
        """``known`` grown by the entries stored after it; it must give the root."""
        rows = self._store.read_entries(known.size, head.size)
        state, full = integrate(known, proven_leaves(rows, known.size, head.size))
        grown = (known.size, [row.data for row in rows])
        if state.root != head.root:
            raise IntegrityFailure(
                f"the entries stored after index {known.size} give root "
                f"{state.root.hex()}, signed root is {head.root.hex()} at size "
                f"{head.size}: the head is not the served tree grown by them"
            )
        for tile in full:
            self._cache.put(tile.level, tile.index, TileNodes.from_levels(tile.nodes))
        self._grown = grown
        return state

    def _rebuilt(self, head: Head) -> TreeState:
        """The edge rebuilt from stored entries and tiles, consistent with the last."""
        state = rebuild_edge(self._store, head)  # (2)
        reader = NodeReader(
            state.size, state.partials, self._store.read_tile, self._cache
        )
        known = self._tree
        if known is not None and known.size > 0:  # (3)
            old = known.head
            if head.size < old.size:
                raise IntegrityFailure(
                    f"the head went back from size {old.size} to {head.size}"
                )
            try:
                proof = build_consistency_proof(reader, old.size, head.size)
                verify_consistency(old.size, head.size, old.root, head.root, proof)
            except (VerificationError, OutOfRange) as e:
                raise IntegrityFailure(
                    f"the head at size {head.size} is not consistent with the "
                    f"one served at size {old.size}: {e}"
                ) from e
        return state
