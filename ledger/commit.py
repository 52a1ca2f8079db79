"""What a commit produced: the tree and signed head, and where each entry is.

``Commit`` is shared by every entry of one committed batch (its receipts'
inclusion proofs are built once for all of them, lazily); ``Committed`` is one
entry's place in it; an ``Outcome`` is that, or the error an item was refused
with. A ``Ticket`` is one ``submit`` call, whose outcomes fill in as commits
land; a ``Pending`` is one of its items waiting in the writer's queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from ledger.integrate import TreeState
from ledger.read.proof_builder import NodeReader, RunPaths
from ledger.storage.rows import Head

__all__ = ["Commit", "Committed", "Outcome", "Pending", "Ticket"]

T = TypeVar("T")


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

    def run_paths(
        self, nodes: Callable[[], NodeReader], lock: threading.Lock
    ) -> RunPaths:
        """The proofs of this commit's new leaves, built by the first who asks.

        ``nodes`` gives a node reader of this commit's tree (for nodes left of
        the run when ``left_edge`` is not known); ``lock`` is the caller's, so
        that two receipts of one commit build them once.
        """
        paths = self.paths
        if paths is None:
            with lock:
                paths = self.paths
                if paths is None:
                    paths = RunPaths(
                        nodes(), self.first, self.leaf_hashes, self.left_edge
                    )
                    self.paths = paths
        return paths


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


Outcome = Committed | Exception


class Ticket:
    """One ``submit`` call: its results fill in as commits land, then resolve."""

    __slots__ = ("future", "remaining", "results")

    def __init__(self, count: int) -> None:
        self.future: Future[list[Outcome]] = Future()
        self.remaining = count
        self.results: list[Outcome | None] = [None] * count

    def settle(self, slot: int, outcome: Outcome) -> None:
        """Fill in one item's outcome; the future resolves with the last."""
        self.results[slot] = outcome
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(self.results)  # type: ignore[arg-type]

    def fail(self, error: BaseException) -> None:
        """Fail the whole call (nothing in it was decided)."""
        if not self.future.done():
            self.future.set_exception(error)


class Pending(Generic[T]):
    """One submitted item waiting in the writer's queue, and where it answers."""

    __slots__ = ("item", "slot", "tag", "ticket", "weight")

    def __init__(
        self, item: T, ticket: Ticket, slot: int, weight: int, tag: int | None = None
    ) -> None:
        self.item = item
        self.ticket = ticket
        self.slot = slot
        self.weight = weight
        # The write queue's id of the item (``ledger.cluster``): its outcome is
        # stored with the commit that decides it.
        self.tag = tag
