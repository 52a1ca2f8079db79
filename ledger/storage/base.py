"""What the log needs from its storage, as protocols (no SQL, no driver).

Three roles, each a subset of the next one's needs:

* ``LogStore``: the log as stored (head, entries, tiles, checkpoints). The reader
  needs only this, and never the writer's lock.
* ``RecordIndexStore``: queries of the record index (subjects, revisions,
  payload hashes, schemas), used by the record gate and the results.
* ``WriterStore``: both, plus the writer's lock, its one-transaction commits and
  the checks the writer runs at start (guards, rows beyond the tree).

``ledger.storage.sql.SqlStorage`` implements all three on SQLite and PostgreSQL.
Nothing read through them is trusted by itself: see ``ledger.reader`` and
``ledger.sequencer`` for how each read is proven against the signed tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from ledger.integrate import FullTile
from ledger.storage.rows import EntryRow, Head, LogMeta, RecordRow, StoredCheckpoint

__all__ = ["LogStore", "RecordIndexStore", "WriterStore"]


class LogStore(Protocol):
    """The stored log: reads only."""

    def meta(self) -> LogMeta:
        """The log's origin and verifier key."""
        ...

    def head(self) -> Head:
        """The current tree head row."""
        ...

    def read_entries(self, start: int, end: int) -> list[EntryRow]:
        """Entries with ``start <= index < end``, in index order."""
        ...

    def read_entries_at(self, indices: Sequence[int]) -> list[EntryRow]:
        """The stored entries at these indices (those that exist)."""
        ...

    def read_leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Stored leaf hashes for ``start <= index < end``, in index order."""
        ...

    def read_tile(self, level: int, index: int) -> bytes:
        """A full tile's 8,192 bytes."""
        ...

    def read_tile_rows(
        self, level: int, start: int, end: int
    ) -> list[tuple[int, bytes, bytes]]:
        """(index, hashes, root) of full tiles at ``level`` in [start, end)."""
        ...

    def find_leaf_hashes(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        """The index of each leaf hash already stored."""
        ...

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        """The checkpoint first signed at ``size``, if any."""
        ...

    def iter_entries(self, start: int = 0, batch: int = 4096) -> Iterator[EntryRow]:
        """Every entry from ``start`` on, in index order."""
        ...

    def iter_checkpoints(self, batch: int = 4096) -> Iterator[StoredCheckpoint]:
        """Every stored checkpoint in size order."""
        ...

    def iter_tiles(self, batch: int = 1024) -> Iterator[tuple[int, int, bytes, bytes]]:
        """Every stored tile as (level, index, hashes, root)."""
        ...

    def close(self) -> None:
        """Close every connection."""
        ...


class RecordIndexStore(Protocol):
    """Queries of the record index."""

    def subject_indices(self, subject: str) -> list[int]:
        """Entry indices of every revision of ``subject``, oldest first."""
        ...

    def record_indices(
        self, schemas: Sequence[str], start: int = 0, end: int | None = None
    ) -> list[int]:
        """Entry indices of the records of these schemas in [start, end)."""
        ...

    def revisions_under(self, prefix: str, since: int = 1) -> list[RecordRow]:
        """Each revision >= ``since`` of each subject under ``prefix``."""
        ...

    def changed_records(self, start: int, end: int) -> list[RecordRow]:
        """Recaps and later revisions in [start, end), in order."""
        ...

    def record_heads(
        self, subjects: Sequence[str], below: int | None = None
    ) -> dict[str, RecordRow]:
        """The latest revision of each subject that has one (before ``below``)."""
        ...

    def records_by_payload(
        self, payload_hashes: Sequence[bytes], below: int | None = None
    ) -> dict[bytes, RecordRow]:
        """The index row of each logged payload hash (first logged wins)."""
        ...

    def chain_state(
        self,
        payload_hashes: Sequence[bytes],
        subjects: Sequence[str],
        below: int | None = None,
    ) -> tuple[dict[bytes, int], dict[str, RecordRow]]:
        """Payload hashes already logged, and subjects' latest revisions."""
        ...

    def scan_records(
        self, end: int, start: int = 0, batch: int = 20_000
    ) -> Iterator[tuple[int, str, int, str, bytes]]:
        """Every record index row in [start, end), as tuples."""
        ...

    def find_records(
        self,
        end: int,
        *,
        start: int = 0,
        subjects: Sequence[str] = (),
        schemas: Sequence[str] = (),
        containing: str | None = None,
        also: Sequence[str] = (),
        batch: int = 4096,
    ) -> Iterator[RecordRow]:
        """Rows in [start, end) that match, and rows of the ``also`` schemas."""
        ...

    def iter_records(self, batch: int = 4096) -> Iterator[RecordRow]:
        """Every record index row, in entry order."""
        ...


class WriterStore(LogStore, RecordIndexStore, Protocol):
    """What the one writer needs besides reads."""

    def acquire_writer_lock(self) -> None:
        """Become the only writer, or fail at once."""
        ...

    def keep_writer_lock(self) -> None:
        """Take the writer lock again if the database lost it (a restart)."""
        ...

    def release_writer_lock(self) -> None:
        """Give up the writer lock."""
        ...

    def commit_batch(
        self,
        expected_size: int,
        rows: Sequence[EntryRow],
        full_tiles: Sequence[FullTile],
        make_head: Callable[[], Head],
        record_rows: Sequence[RecordRow] = (),
        decided: Sequence[tuple[int, bytes, bytes]] = (),
    ) -> Head:
        """Write a batch and move the head from ``expected_size``, atomically.

        ``decided``: outcomes of queued submissions, stored in the same
        transaction (a cluster's write queue).
        """
        ...

    def settle_queue(self, decided: Sequence[tuple[int, bytes, bytes]]) -> None:
        """Store outcomes of queued submissions that need no commit."""
        ...

    def refresh_head(
        self, head: Head, made_at_ms: int, seal: bytes | None = None
    ) -> None:
        """Record a fresh signing time (and seal) for an unchanged head."""
        ...

    def guard_problems(self) -> list[str]:
        """Append-only triggers missing, altered, disabled or foreign."""
        ...

    def beyond(self, size: int) -> list[str]:
        """Rows that lie beyond a tree of ``size`` entries."""
        ...
