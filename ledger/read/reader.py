"""The log reader: checkpoint, tiles, entry bundles, entries and proofs.

``LogReader`` answers every read of the log from storage (``LogStore``) and a
``TreeSource``, which says what tree the log has signed. It needs neither the
writer, nor the signing key, nor the writer's lock: in the writer's process the
source is the sequencer's committed tree (``Ledger``); in a read-only process it
is the head row in the database, checked against the log key and rebuilt from
the stored tiles (``ledger.read.stored.StoredTree``).

Two checkpoints, each for its reader. ``latest`` is the tree the log signed
last: the proof routes (``/v1/proofs/inclusion``, ``/consistency``,
``/v1/subjects/...``) prove to it, as receipts do, because a writer's receipt is
in that tree at once and a client following the log from a receipt
(``SaksiClient.verify_growth``, ``prove_entry``) must be able to go on from it.
``current`` is the checkpoint ``/log/checkpoint`` publishes: the latest one the
witnesses cosigned where witnesses are configured (else the same as ``latest``);
an observer checks it under its witness policy, and the auditor's export
(``/v1/proofs/export``) proves to it. Every answer carries the checkpoint it
proves to. Tiles and entry bundles are served up to the latest signed tree, which
extends the current checkpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ledger.errors import IntegrityFailure, OutOfRange
from ledger.read.proof_builder import (
    FullTileCache,
    NodeReader,
    build_consistency_proof,
    build_inclusion_proof,
    build_inclusion_proofs,
)
from ledger.read.tree import Prover, SignedTree, entry_prover
from ledger.storage.base import LogStore
from ledger.tree.tiles import TILE_WIDTH, level_width
from verifier.checkpoint import parse_checkpoint
from verifier.errors import VerificationError
from verifier.note import parse_note
from verifier.tile_format import format_entry_bundle

__all__ = ["Current", "LogReader", "TreeSource"]


class TreeSource(Protocol):
    """What tree the log has signed, and the checkpoint it publishes."""

    def tree(self) -> SignedTree:
        """The latest signed tree.

        Raises:
            IntegrityFailure: the log's stored state is not what it signed.
            StorageUnavailable: the database cannot be read.
        """
        ...

    def published(self) -> bytes | None:
        """The latest witnessed checkpoint note, or None (no witnesses, or none yet)."""
        ...


@dataclass(frozen=True, slots=True)
class Current:
    """A checkpoint a route answers with: its note and size, and the latest tree."""

    note: bytes
    size: int
    tree: SignedTree


class LogReader:
    """Reads of one log, each within (and proven against) its signed tree."""

    def __init__(
        self, store: LogStore, source: TreeSource, cache: FullTileCache
    ) -> None:
        self.store = store
        self.source = source
        self.cache = cache
        self._latest: NodeReader | None = None
        self._lock = threading.Lock()

    # -- the tree ----------------------------------------------------------------

    def tree(self) -> SignedTree:
        """The latest signed tree (see ``TreeSource.tree``)."""
        return self.source.tree()

    @property
    def size(self) -> int:
        """Entries in the latest signed tree."""
        return self.source.tree().size

    def current(self) -> Current:
        """The published checkpoint (see the module's docstring)."""
        # The witnessed note first: the tree read after it is at least as large.
        witnessed = self.source.published()
        tree = self.source.tree()
        if witnessed is None:
            return Current(tree.head.note, tree.size, tree)
        try:
            size = parse_checkpoint(parse_note(witnessed).text).size
        except VerificationError as e:  # it was checked when it was cosigned
            raise IntegrityFailure(
                f"the witnessed checkpoint does not parse: {e}"
            ) from e
        return Current(witnessed, size, tree)

    def latest(self) -> Current:
        """The latest signed tree and its note (what the proof routes prove to)."""
        tree = self.source.tree()
        return Current(tree.head.note, tree.size, tree)

    def checkpoint(self) -> bytes:
        """The current checkpoint note (``/log/checkpoint``)."""
        return self.current().note

    def nodes(self, tree: SignedTree | None = None) -> NodeReader:
        """A node reader of ``tree`` (default: the latest), shared per tree size.

        Its partial-tile nodes and range hashes are computed once and shared by
        every proof of that tree.
        """
        tree = tree or self.source.tree()
        reader = self._latest  # one attribute read: no lock on the hot path
        if reader is not None and reader.size == tree.size:
            return reader
        state = tree.state
        reader = NodeReader(
            state.size, state.partials, self.store.read_tile, self.cache
        )
        with self._lock:
            if self._latest is None or reader.size > self._latest.size:
                self._latest = reader
        return reader

    def clear_cache(self) -> None:
        """Forget every cached tile and node (benchmarks measure cold proofs)."""
        self.cache.clear()
        with self._lock:
            self._latest = None

    def prover(self, tree: SignedTree | None = None) -> Prover:
        """Proves stored entries against ``tree`` (default: the latest signed)."""
        tree = tree or self.source.tree()
        return entry_prover(self.nodes(tree), tree.size, tree.head.root)

    # -- tlog-tiles --------------------------------------------------------------

    def tile(self, level: int, index: int, width: int) -> bytes:
        """Hash tile ``level/index`` of ``width`` hashes (256 = full).

        A tile that is full in the latest tree (or any prefix of it) comes from
        the full tile; the partial tile at the tree's right edge from the signed
        tree's own edge, which rebuilt the signed root (no other database read).

        Raises:
            OutOfRange: the tile is not (or not that wide) in the current tree.
            IntegrityFailure: a full tile should be stored and is not.
        """
        tree = self.tree()
        available = level_width(tree.size, level) - index * TILE_WIDTH
        if index < 0 or width < 1 or width > min(TILE_WIDTH, available):
            raise OutOfRange(f"tile {level}/{index} of width {width} is not published")
        if available >= TILE_WIDTH:
            return self.full_tile(level, index)[: 32 * width]
        return b"".join(tree.state.partials[level][:width])

    def full_tile(self, level: int, index: int) -> bytes:
        """A full tile's 8,192 bytes, from the proof cache when it is there.

        Raises:
            IntegrityFailure: the tile should be stored and is not.
        """
        return self.cache.get(level, index, self.store.read_tile).bottom()

    def entry_bundle(self, index: int, width: int) -> bytes:
        """Entry bundle ``index`` with ``width`` entries (256 = full).

        Raises:
            OutOfRange: the bundle is not (or not that wide) in the current tree.
        """
        available = self.size - index * TILE_WIDTH
        if index < 0 or width < 1 or width > min(TILE_WIDTH, available):
            raise OutOfRange(f"entry bundle {index} of width {width} is not published")
        start = index * TILE_WIDTH
        rows = self.store.read_entries(start, start + width)
        return format_entry_bundle([r.data for r in rows])

    # -- entries and proofs ------------------------------------------------------

    def entry_bytes(self, index: int) -> bytes:
        """The exact stored bytes of entry ``index``, proven against the signed tree.

        Raises:
            OutOfRange: no such entry.
            IntegrityFailure: the stored bytes are not the entry the tree holds.
        """
        size = self.size
        if not 0 <= index < size:
            raise OutOfRange(f"entry {index} is beyond the tree size {size}")
        rows = self.store.read_entries(index, index + 1)
        if not rows:
            raise OutOfRange(f"entry {index} is not stored")
        self.prover()(index, rows[0].data)
        return rows[0].data

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash of entry ``index``, read through the tile cache.

        Raises:
            OutOfRange: beyond the tree.
        """
        reader = self.nodes()
        if not 0 <= index < reader.size:
            raise OutOfRange(f"entry {index} is beyond the tree size {reader.size}")
        return reader.node(0, index)

    def index_of_leaf(self, leaf_hash: bytes) -> int:
        """The index of the entry with ``leaf_hash``.

        Raises:
            OutOfRange: no entry in the signed tree has it.
        """
        index = self.store.find_leaf_hashes([leaf_hash]).get(leaf_hash)
        if index is None or index >= self.size:
            raise OutOfRange(f"no entry has leaf hash {leaf_hash.hex()}")
        return index

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof of entry ``index`` in the tree of ``size`` (default: latest).

        Raises:
            OutOfRange: index or size beyond the tree.
        """
        reader = self.nodes()
        return build_inclusion_proof(
            reader, index, reader.size if size is None else size
        )

    def inclusion_proofs(
        self, indices: Iterable[int], size: int | None = None
    ) -> Iterator[list[bytes]]:
        """Inclusion proofs of ``indices`` in the tree of ``size``, in their order.

        Leaves of one tile share the proof's part above it, built once: the
        fast way to prove many neighbouring entries.

        Raises:
            OutOfRange: an index or the size beyond the tree.
        """
        reader = self.nodes()
        return build_inclusion_proofs(
            reader, indices, reader.size if size is None else size
        )

    def consistency_proof(
        self, old_size: int, new_size: int | None = None
    ) -> list[bytes]:
        """Consistency proof from ``old_size`` to ``new_size`` (default: latest).

        Raises:
            OutOfRange: sizes not 0 < old <= new <= tree size.
        """
        reader = self.nodes()
        return build_consistency_proof(
            reader, old_size, reader.size if new_size is None else new_size
        )
