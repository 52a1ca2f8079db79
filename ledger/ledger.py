"""The Ledger: append entries, get receipts with proofs, build proofs on request.

``Ledger.append`` returns only after the entry is committed, with everything a
writer needs to hold verifiable evidence at once: its index, its leaf hash, the
signed checkpoint of the tree it is in, and the inclusion proof to that
checkpoint's root. Identical bytes appended again get the original index.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ledger.checkpoint import CheckpointPublisher
from ledger.errors import EntryTooLarge, IntegrityFailure, OutOfRange
from ledger.integrate import TreeState
from ledger.read.proofs import (
    FullTileCache,
    NodeReader,
    RunPaths,
    build_consistency_proof,
    build_inclusion_proof,
)
from ledger.sequencer import (
    Committed,
    Gate,
    Outcome,
    Prover,
    Sequencer,
    SequencerConfig,
)
from ledger.storage.rows import Head
from ledger.storage.sql import SqlStorage
from verifier.note import NoteSigner, VerifierKey
from verifier.tiles import MAX_ENTRY_SIZE

__all__ = ["AppendReceipt", "Ledger"]


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


class _AsyncPending:
    """Appends made in one turn of an event loop, waiting to be handed over."""

    __slots__ = ("entries", "scheduled", "waiters")

    def __init__(self) -> None:
        self.entries: list[object] = []
        self.waiters: list[asyncio.Future[AppendReceipt]] = []
        self.scheduled = False


class Ledger:
    """An RFC 6962 log with group-commit appends and tile-based proofs."""

    def __init__(
        self,
        storage: SqlStorage,
        signer: NoteSigner,
        verifier_key: VerifierKey,
        origin: str,
        *,
        clock: Callable[[], float],
        config: SequencerConfig | None = None,
        cache_tiles: int = 4096,
        gate: Gate | None = None,
    ) -> None:
        self.storage = storage
        self.origin = origin
        self.verifier_key = verifier_key
        self._cache = FullTileCache(cache_tiles)
        self._current_reader: NodeReader | None = None
        self._paths_lock = threading.Lock()
        self._async_pending: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _AsyncPending
        ] = weakref.WeakKeyDictionary()
        publisher = CheckpointPublisher(origin, signer, verifier_key)
        self._gate = gate
        self._sequencer = Sequencer(
            storage, publisher, clock, self._cache, config or SequencerConfig(), gate
        )

    @property
    def cached_tiles(self) -> int:
        """How many full tiles the proof cache holds now (about 16 KiB each)."""
        return len(self._cache)

    def clear_tile_cache(self) -> None:
        """Forget every cached tile (benchmarks measure cold proofs with this)."""
        self._cache.clear()
        self._current_reader = None

    def start(self) -> None:
        """Check storage against the signed head and start the writer.

        Raises:
            IntegrityFailure: stored data does not rebuild the signed root.
            StorageUnavailable: the database is unreachable or already in use.
        """
        self._sequencer.start()

    def halt(self, error: IntegrityFailure) -> None:
        """Stop all writes: every later append raises ``error``."""
        self._sequencer.halt(error)

    def close(self) -> None:
        """Finish queued appends and stop."""
        self._sequencer.stop()

    def __enter__(self) -> Ledger:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- writes -----------------------------------------------------------------

    def append(self, entry: bytes, timeout: float | None = None) -> AppendReceipt:
        """Append one entry and wait until it is durable.

        Raises:
            EntryTooLarge: over 65,535 bytes.
            Pushback: too much queued; retry later.
            StorageUnavailable: not committed (nothing acknowledged).
            IntegrityFailure: writes are stopped.
        """
        self._require_gate(False)
        outcomes = self._sequencer.submit([entry]).result(timeout)
        return self._receipt(_committed(outcomes[0]))

    def append_many(
        self, entries: Sequence[bytes], timeout: float | None = None
    ) -> list[AppendReceipt]:
        """Append a batch; every entry is committed (or the call raises).

        Raises:
            EntryTooLarge: an entry is over 65,535 bytes (nothing is queued).
            Pushback, StorageUnavailable, IntegrityFailure: as for ``append``.
        """
        self._require_gate(False)
        outcomes = self._sequencer.submit(list(entries)).result(timeout)
        return [self._receipt(_committed(c)) for c in outcomes]

    async def append_async(self, entry: bytes) -> AppendReceipt:
        """``append`` for asyncio callers: the event loop is never blocked on I/O.

        Appends made in the same turn of the event loop are handed to the writer
        together (one queue operation and one wake-up for all of them); each
        caller still gets its own receipt or error.

        Raises:
            EntryTooLarge, Pushback, StorageUnavailable, IntegrityFailure: as for
                ``append``.
        """
        self._require_gate(False)
        if not isinstance(entry, bytes):
            raise TypeError("entries must be bytes")
        if len(entry) > MAX_ENTRY_SIZE:
            raise EntryTooLarge(
                f"entry of {len(entry)} bytes exceeds the {MAX_ENTRY_SIZE}-byte limit"
            )
        return await self._enqueue_async(entry)

    def submit_many(
        self, items: Sequence[object], timeout: float | None = None
    ) -> list[AppendReceipt | Exception]:
        """Hand items to the gate; each is committed or refused on its own.

        Raises:
            Pushback, StorageUnavailable, IntegrityFailure: the batch as a whole
                could not be decided (nothing in it was acknowledged).
        """
        self._require_gate(True)
        outcomes = self._sequencer.submit(list(items)).result(timeout)
        return [c if isinstance(c, Exception) else self._receipt(c) for c in outcomes]

    def submit(self, item: object, timeout: float | None = None) -> AppendReceipt:
        """Hand one item to the gate and wait for its receipt.

        Raises:
            Exception: whatever the gate refused it with.
            Pushback, StorageUnavailable, IntegrityFailure: as for ``append``.
        """
        outcome = self.submit_many([item], timeout)[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def submit_async(self, item: object) -> AppendReceipt:
        """``submit`` for asyncio callers, batched per event-loop turn.

        Raises:
            Exception: whatever the gate refused it with.
            Pushback, StorageUnavailable, IntegrityFailure: as for ``append``.
        """
        self._require_gate(True)
        return await self._enqueue_async(item)

    def _require_gate(self, wanted: bool) -> None:
        if wanted != (self._gate is not None):
            raise TypeError(
                "this log takes records: use submit"
                if self._gate is not None
                else "this log has no record gate: use append"
            )

    async def _enqueue_async(self, item: object) -> AppendReceipt:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[AppendReceipt] = loop.create_future()
        pending = self._async_pending.get(loop)
        if pending is None:
            pending = self._async_pending[loop] = _AsyncPending()
        pending.entries.append(item)
        pending.waiters.append(waiter)
        if not pending.scheduled:
            pending.scheduled = True
            loop.call_soon(self._flush_async, loop, pending)
        return await waiter

    def _flush_async(
        self, loop: asyncio.AbstractEventLoop, pending: _AsyncPending
    ) -> None:
        entries, waiters = pending.entries, pending.waiters
        pending.entries, pending.waiters, pending.scheduled = [], [], False
        try:
            future = self._sequencer.submit(entries)
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
            paths = commit.paths
            if paths is None:
                with self._paths_lock:
                    paths = commit.paths
                    if paths is None:
                        reader = self._reader_at(commit.state)
                        paths = RunPaths(
                            reader, commit.first, commit.leaf_hashes, commit.left_edge
                        )
                        commit.paths = paths
            proof = paths.path(index)
        else:
            # A repeat of an older entry: prove it in the tree it is answered in.
            reader = self._reader_at(commit.state)
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

    # -- reads ------------------------------------------------------------------

    def _reader_at(self, state: TreeState) -> NodeReader:
        # One reader per committed tree: its partial-tile nodes and range hashes
        # are computed once and shared by every proof of that tree.
        reader = self._current_reader
        if reader is not None and reader.size == state.size:
            return reader
        reader = NodeReader(
            state.size, state.partials, self.storage.read_tile, self._cache
        )
        if self._current_reader is None or state.size > self._current_reader.size:
            self._current_reader = reader
        return reader

    def _reader(self) -> NodeReader:
        return self._reader_at(self._sequencer.state)

    def prover(self) -> Prover:
        """Proves stored entries against the latest signed tree before use."""
        return self._sequencer.prover(self._sequencer.state)

    @property
    def head(self) -> Head:
        """The latest signed tree head."""
        return self._sequencer.head

    @property
    def size(self) -> int:
        """The number of committed entries."""
        return self._sequencer.state.size

    def checkpoint(self) -> bytes:
        """The latest signed checkpoint note."""
        return self._sequencer.head.note

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof of entry ``index`` in the tree of ``size`` (default: now).

        Raises:
            OutOfRange: index or size beyond the tree.
        """
        reader = self._reader()
        return build_inclusion_proof(
            reader, index, reader.size if size is None else size
        )

    def consistency_proof(
        self, old_size: int, new_size: int | None = None
    ) -> list[bytes]:
        """Consistency proof from ``old_size`` to ``new_size`` (default: now).

        Raises:
            OutOfRange: sizes not 0 < old <= new <= tree size.
        """
        reader = self._reader()
        return build_consistency_proof(
            reader, old_size, reader.size if new_size is None else new_size
        )

    def full_tile(self, level: int, index: int) -> bytes:
        """A full tile's 8,192 bytes, from the proof cache when it is there.

        Raises:
            IntegrityFailure: the tile should be stored and is not.
        """
        return self._cache.get(level, index, self.storage.read_tile).bottom()

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash of entry ``index``, read through the tile cache.

        Raises:
            OutOfRange: beyond the tree.
        """
        reader = self._reader()
        if not 0 <= index < reader.size:
            raise OutOfRange(f"entry {index} is beyond the tree size {reader.size}")
        return reader.node(0, index)

    def entry(self, index: int) -> bytes:
        """The stored bytes of entry ``index``.

        Raises:
            OutOfRange: no such entry.
        """
        if not 0 <= index < self.size:
            raise OutOfRange(f"entry {index} is beyond the tree size {self.size}")
        rows = self.storage.read_entries(index, index + 1)
        if not rows:
            raise OutOfRange(f"entry {index} is not stored")
        return rows[0].data
