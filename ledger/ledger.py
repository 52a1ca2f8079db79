"""The Ledger: submit items, get receipts with proofs; read through ``reader``.

``Ledger.submit`` returns only after the entry is committed, with everything a
writer needs to hold verifiable evidence at once: its index, its leaf hash, the
signed checkpoint of the tree it is in, and the inclusion proof to that
checkpoint's root. What an item becomes is its gate's decision
(``ledger.gate``): a log of plain entries (``Ledger.of_entries``, ``append``)
logs identical bytes once; a record log (``ledger.admission.RecordGate``)
checks each record's chain and authorization. Reads of the log (tiles, entries,
proofs) go through ``reader``, which needs nothing of the writer but its
committed tree.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ledger.commit import Committed, Outcome
from ledger.errors import IntegrityFailure
from ledger.gate import Entry, EntryGate, Gate, check_entry_size
from ledger.publisher import CheckpointPublisher
from ledger.read.proof_builder import FullTileCache, build_inclusion_proof
from ledger.read.reader import LogReader
from ledger.read.tree import SignedTree
from ledger.sequencer import Sequencer, SequencerConfig
from ledger.storage.base import WriterStore
from ledger.storage.rows import Head
from ledger.telemetry import WriterEvents
from verifier.note import NoteSigner, VerifierKey

__all__ = ["AppendReceipt", "Ledger"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AppendReceipt:
    """Proof of an append: index, leaf hash, signed checkpoint, inclusion proof."""

    index: int
    leaf_hash: bytes
    size: int
    checkpoint: bytes
    proof: tuple[bytes, ...]
    duplicate: bool
    entry: bytes = b""

    def to_json(self) -> dict[str, Any]:
        """The receipt as the API returns it, with the exact entry bytes it proves.

        With the entry a client checks leaf_hash = SHA-256(0x00 || entry) and that
        the logged envelope carries its own payload, then the proof: nothing is
        taken on trust.
        """
        return {
            "index": self.index,
            "leaf_hash": self.leaf_hash.hex(),
            "tree_size": self.size,
            "checkpoint": self.checkpoint.decode("utf-8"),
            "inclusion_proof": [h.hex() for h in self.proof],
            "duplicate": self.duplicate,
            "entry": base64.b64encode(self.entry).decode("ascii"),
        }


def _committed(outcome: Outcome) -> Committed:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class _AsyncPending(Generic[T]):
    """Submissions made in one turn of an event loop, waiting to be handed over."""

    __slots__ = ("items", "scheduled", "waiters")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.waiters: list[asyncio.Future[AppendReceipt]] = []
        self.scheduled = False


class Ledger(Generic[T]):
    """An RFC 6962 log with group-commit submissions and tile-based proofs.

    ``gate`` decides what each submitted item becomes; ``weigh(item)`` is its
    size in bytes for the batch bound. The ledger is also the ``TreeSource``
    of its own ``reader``: the committed tree, and the witnessed checkpoint
    once ``publish_witnessed`` names where it comes from.
    """

    def __init__(
        self,
        storage: WriterStore,
        signer: NoteSigner,
        verifier_key: VerifierKey,
        origin: str,
        *,
        gate: Gate[T],
        weigh: Callable[[T], int],
        clock: Callable[[], float],
        config: SequencerConfig | None = None,
        cache_tiles: int = 4096,
    ) -> None:
        self.storage = storage
        self.origin = origin
        self.verifier_key = verifier_key
        self._cache = FullTileCache(cache_tiles)
        self._paths_lock = threading.Lock()
        self._async_pending: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _AsyncPending[T]
        ] = weakref.WeakKeyDictionary()
        self._witnessed: Callable[[], bytes | None] | None = None
        publisher = CheckpointPublisher(origin, signer, verifier_key)
        self._sequencer: Sequencer[T] = Sequencer(
            storage, publisher, clock, self._cache, gate, weigh, config
        )
        self.reader = LogReader(storage, self, self._cache)

    @classmethod
    def of_entries(
        cls,
        storage: WriterStore,
        signer: NoteSigner,
        verifier_key: VerifierKey,
        origin: str,
        *,
        clock: Callable[[], float],
        config: SequencerConfig | None = None,
        cache_tiles: int = 4096,
    ) -> Ledger[Entry]:
        """A log of plain entry bytes (``append``); identical bytes logged once."""
        return Ledger(
            storage,
            signer,
            verifier_key,
            origin,
            gate=EntryGate(storage),
            weigh=_entry_size,
            clock=clock,
            config=config,
            cache_tiles=cache_tiles,
        )

    @property
    def cached_tiles(self) -> int:
        """How many full tiles the proof cache holds now (about 16 KiB each)."""
        return len(self._cache)

    def start(self) -> None:
        """Check storage against the signed head and start the writer.

        Raises:
            IntegrityFailure: stored data does not rebuild the signed root.
            StorageUnavailable: the database is unreachable or already in use.
        """
        self._sequencer.start()

    def halt(self, error: IntegrityFailure) -> None:
        """Stop all writes: every later submission raises ``error``."""
        self._sequencer.halt(error)

    def observe(self, events: WriterEvents) -> None:
        """Report every commit and failure of the writer to ``events``."""
        self._sequencer.events = events

    @property
    def queue_depth(self) -> int:
        """Submissions waiting for the writer now."""
        return self._sequencer.queue_depth

    @property
    def failure(self) -> IntegrityFailure | None:
        """Why writes are stopped, or None while the writer writes."""
        return self._sequencer.failure

    def close(self) -> None:
        """Finish queued submissions and stop."""
        self._sequencer.stop()

    def __enter__(self) -> Ledger[T]:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the tree (the reader's TreeSource) ---------------------------------------

    def tree(self) -> SignedTree:
        """The last committed signed tree."""
        return self._sequencer.tree()

    def published(self) -> bytes | None:
        """The latest witnessed checkpoint, once witnessing publishes one."""
        return None if self._witnessed is None else self._witnessed()

    def publish_witnessed(self, source: Callable[[], bytes | None]) -> None:
        """Serve the witnessed checkpoint ``source()`` gives as the current one."""
        self._witnessed = source

    @property
    def head(self) -> Head:
        """The latest signed tree head."""
        return self._sequencer.head

    @property
    def size(self) -> int:
        """The number of committed entries."""
        return self._sequencer.tree().size

    # -- plain entries ------------------------------------------------------------

    def append(
        self: Ledger[Entry], entry: bytes, timeout: float | None = None
    ) -> AppendReceipt:
        """Append one entry and wait until it is durable.

        Raises:
            EntryTooLarge: over 65,535 bytes.
            Pushback: too much queued; retry later.
            StorageUnavailable: not committed (nothing acknowledged).
            IntegrityFailure: writes are stopped.
        """
        return self.append_many([entry], timeout)[0]

    def append_many(
        self: Ledger[Entry], entries: Sequence[bytes], timeout: float | None = None
    ) -> list[AppendReceipt]:
        """Append a batch; every entry is committed (or the call raises).

        Raises:
            EntryTooLarge: an entry is over 65,535 bytes (nothing is queued).
            Pushback, StorageUnavailable, IntegrityFailure: as for ``append``.
        """
        check_entry_size(entries)
        # Hashed here, in the caller's thread, not in the writer's.
        items = [Entry(data) for data in entries]
        outcomes = self._sequencer.submit(items).result(timeout)
        return [self._receipt(_committed(c)) for c in outcomes]

    async def append_async(self: Ledger[Entry], entry: bytes) -> AppendReceipt:
        """``append`` for asyncio callers: the event loop is never blocked on I/O.

        Raises:
            EntryTooLarge, Pushback, StorageUnavailable, IntegrityFailure: as for
                ``append``.
        """
        check_entry_size([entry])
        return await self.submit_async(Entry(entry))

    # -- submissions --------------------------------------------------------------

    def submit_many(
        self, items: Sequence[T], timeout: float | None = None
    ) -> list[AppendReceipt | Exception]:
        """Hand items to the gate; each is committed or refused on its own.

        Raises:
            Pushback, StorageUnavailable, IntegrityFailure: the batch as a whole
                could not be decided (nothing in it was acknowledged).
        """
        outcomes = self._sequencer.submit(list(items)).result(timeout)
        return [c if isinstance(c, Exception) else self._receipt(c) for c in outcomes]

    def submit(self, item: T, timeout: float | None = None) -> AppendReceipt:
        """Hand one item to the gate and wait for its receipt.

        Raises:
            Exception: whatever the gate refused it with.
            Pushback, StorageUnavailable, IntegrityFailure: as for ``append``.
        """
        outcome = self.submit_many([item], timeout)[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def submit_async(self, item: T) -> AppendReceipt:
        """``submit`` for asyncio callers, batched per event-loop turn.

        Submissions made in the same turn of the event loop are handed to the
        writer together (one queue operation and one wake-up for all of them);
        each caller still gets its own receipt or error.

        Raises:
            Exception: whatever the gate refused it with.
            Pushback, StorageUnavailable, IntegrityFailure: as for ``append``.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[AppendReceipt] = loop.create_future()
        pending = self._async_pending.get(loop)
        if pending is None:
            pending = self._async_pending[loop] = _AsyncPending()
        pending.items.append(item)
        pending.waiters.append(waiter)
        if not pending.scheduled:
            pending.scheduled = True
            loop.call_soon(self._flush_async, loop, pending)
        return await waiter

    def _flush_async(
        self, loop: asyncio.AbstractEventLoop, pending: _AsyncPending[T]
    ) -> None:
        items, waiters = pending.items, pending.waiters
        pending.items, pending.waiters, pending.scheduled = [], [], False
        try:
            future = self._sequencer.submit(items)
        except Exception as e:  # every waiter gets the error
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(e)
            return

        def done(f: Future[list[Outcome]]) -> None:
            loop.call_soon_threadsafe(self._resolve_async, f, waiters)

        future.add_done_callback(done)

    def _resolve_async(
        self,
        future: Future[list[Outcome]],
        waiters: list[asyncio.Future[AppendReceipt]],
    ) -> None:
        error = future.exception()
        if error is not None:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
            return
        for waiter, outcome in zip(waiters, future.result(), strict=True):
            if waiter.done():
                continue
            if isinstance(outcome, Exception):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(self._receipt(outcome))

    def _receipt(self, committed: Committed) -> AppendReceipt:
        commit = committed.commit
        index = committed.index
        if index >= commit.first:
            # A new leaf of this commit: its proof comes from the commit's shared
            # run of paths, built once by the first receipt that needs it.
            paths = commit.run_paths(
                lambda: self.reader.nodes(SignedTree(commit.head, commit.state)),
                self._paths_lock,
            )
            proof = paths.path(index)
        else:
            # A repeat of an older entry: prove it in the tree it is answered in.
            reader = self.reader.nodes(SignedTree(commit.head, commit.state))
            proof = tuple(build_inclusion_proof(reader, index, commit.state.size))
        return AppendReceipt(
            index,
            committed.leaf_hash,
            commit.state.size,
            commit.head.note,
            proof,
            committed.duplicate,
            committed.data,
        )


def _entry_size(entry: Entry) -> int:
    data = getattr(entry, "data", None)  # anything else is the gate's to refuse
    return len(data) if isinstance(data, bytes) else 1
