"""The Ledger: append entries, get receipts with proofs, build proofs on request.

``Ledger.append`` returns only after the entry is committed, with everything a
writer needs to hold verifiable evidence at once: its index, its leaf hash, the
signed checkpoint of the tree it is in, and the inclusion proof to that
checkpoint's root. Identical bytes appended again get the original index.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.checkpoint import CheckpointPublisher
from ledger.errors import OutOfRange
from ledger.read.proofs import (
    FullTileCache,
    NodeReader,
    build_consistency_proof,
    build_inclusion_proof,
)
from ledger.sequencer import Committed, Sequencer, SequencerConfig
from ledger.storage.sql import Head, SqlStorage
from verifier.note import NoteSigner, VerifierKey

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
        cache_tiles: int = 1024,
    ) -> None:
        self.storage = storage
        self.origin = origin
        self.verifier_key = verifier_key
        self._cache = FullTileCache(cache_tiles)
        self._current_reader: NodeReader | None = None
        publisher = CheckpointPublisher(origin, signer, verifier_key)
        self._sequencer = Sequencer(
            storage, publisher, clock, self._cache, config or SequencerConfig()
        )

    def start(self) -> None:
        """Check storage against the signed head and start the writer.

        Raises:
            IntegrityFailure: stored data does not rebuild the signed root.
            StorageUnavailable: the database is unreachable or already in use.
        """
        self._sequencer.start()

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
        future = self._sequencer.submit([entry])[0]
        return self._receipt(future.result(timeout))

    def append_many(
        self, entries: Sequence[bytes], timeout: float | None = None
    ) -> list[AppendReceipt]:
        """Append a batch; every entry is committed (or the call raises).

        Raises:
            EntryTooLarge: an entry is over 65,535 bytes (nothing is queued).
            Pushback, StorageUnavailable, IntegrityFailure: as for ``append``.
        """
        futures = self._sequencer.submit(list(entries))
        committed = [f.result(timeout) for f in futures]
        readers: dict[int, NodeReader] = {}
        return [self._receipt(c, readers) for c in committed]

    async def append_async(self, entry: bytes) -> AppendReceipt:
        """``append`` for asyncio callers: the event loop is never blocked on I/O."""
        future = self._sequencer.submit([entry])[0]
        committed = await asyncio.wrap_future(future)
        return self._receipt(committed)

    def _receipt(
        self, committed: Committed, readers: dict[int, NodeReader] | None = None
    ) -> AppendReceipt:
        state = committed.state
        reader = None if readers is None else readers.get(state.size)
        if reader is None:
            reader = self._reader_for(state.size, state.partials)
            if readers is not None:
                readers[state.size] = reader
        proof = build_inclusion_proof(reader, committed.index, state.size)
        return AppendReceipt(
            committed.index,
            committed.leaf_hash,
            state.size,
            committed.head.note,
            tuple(proof),
            committed.duplicate,
        )

    # -- reads ------------------------------------------------------------------

    def _reader_for(self, size: int, partials: Sequence[Sequence[bytes]]) -> NodeReader:
        return NodeReader(size, partials, self.storage.read_tile, self._cache)

    def _reader(self) -> NodeReader:
        # One reader per committed tree: its partial-tile nodes and range hashes
        # are computed once and shared by every proof until the next commit.
        state = self._sequencer.state
        reader = self._current_reader
        if reader is None or reader.size != state.size:
            reader = self._reader_for(state.size, state.partials)
            self._current_reader = reader
        return reader

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
