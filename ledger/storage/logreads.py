"""Reading the log back: its head, entries, tiles and checkpoints.

Nothing here is trusted by itself: the writer proves what it reads against the
signed tree before it acts on it, and the reader checks the tiles it serves
against the signed checkpoint (``ledger.reader``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sqlalchemy as sa

from ledger.errors import IntegrityFailure, StorageUnavailable
from ledger.storage.engine import SqlEngine
from ledger.storage.rows import EntryRow, Head, LogMeta, StoredCheckpoint, leaf_key
from ledger.storage.schema import (
    checkpoints,
    entries,
    log_meta,
    records,
    tiles,
    tree_head,
    witnessed_checkpoint,
)

__all__ = ["SqlLogReads"]


class SqlLogReads(SqlEngine):
    """Reads of the log's own tables."""

    def meta(self) -> LogMeta:
        """The log's origin and verifier key.

        Raises:
            StorageUnavailable: no log here, or the database failed.
        """
        with self._connect() as conn:
            row = conn.execute(
                sa.select(log_meta.c.origin, log_meta.c.verifier_key)
            ).first()
        if row is None:
            raise StorageUnavailable("no log in this database: run 'saksi init' first")
        return LogMeta(row.origin, row.verifier_key)

    def head(self) -> Head:
        """The current tree head.

        Raises:
            StorageUnavailable: no log here, or the database failed.
        """
        with self._connect() as conn:
            row = conn.execute(sa.select(tree_head).where(tree_head.c.id == 1)).first()
        if row is None:
            raise StorageUnavailable("no tree head in this database: run 'saksi init'")
        seal = None if row.seal is None else bytes(row.seal)
        return Head(row.size, bytes(row.root), bytes(row.note), row.made_at_ms, seal)

    def witnessed(self) -> tuple[int, bytes] | None:
        """(size, note) of the stored witnessed checkpoint, None if none is.

        Unproven: see ``ledger.read.witnessed``.

        Raises:
            StorageUnavailable: the database failed.
        """
        with self._connect() as conn:
            row = conn.execute(
                sa.select(witnessed_checkpoint.c.size, witnessed_checkpoint.c.note)
            ).first()
        return None if row is None else (row.size, bytes(row.note))

    def find_leaf_hashes(self, leaf_hashes: Sequence[bytes]) -> dict[bytes, int]:
        """Map each already-stored leaf hash to its index (via the leaf_key index)."""
        wanted = set(leaf_hashes)
        keys = sorted({leaf_key(h) for h in wanted})
        found: dict[bytes, int] = {}
        with self._connect() as conn:
            rows = self._where_in(
                conn, "SELECT leaf_hash, idx FROM entries", "leaf_key", "bigint", keys
            )
        for stored, index in rows:
            key = bytes(stored)
            if key in wanted:
                found[key] = min(index, found.get(key, index))
        return found

    def read_entries(self, start: int, end: int) -> list[EntryRow]:
        """Entries with ``start <= index < end``, in index order (gaps stay gaps)."""
        with self._connect() as conn:
            result = conn.execute(
                sa.select(
                    entries.c.idx,
                    entries.c.leaf_hash,
                    entries.c.data,
                    entries.c.leaf_key,
                )
                .where(entries.c.idx >= start, entries.c.idx < end)
                .order_by(entries.c.idx)
            )
            return [EntryRow(i, bytes(h), bytes(d), k) for i, h, d, k in result]

    def read_entries_at(self, indices: Sequence[int]) -> list[EntryRow]:
        """The stored entries at these indices (those that exist), in any order."""
        if not indices:
            return []
        with self._connect() as conn:
            rows = self._where_in(
                conn,
                "SELECT idx, leaf_hash, data, leaf_key FROM entries",
                "idx",
                "bigint",
                sorted(set(indices)),
            )
        return [EntryRow(i, bytes(h), bytes(d), k) for i, h, d, k in rows]

    def read_leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Stored leaf hashes for ``start <= index < end``, in index order."""
        with self._connect() as conn:
            result = conn.execute(
                sa.select(entries.c.leaf_hash)
                .where(entries.c.idx >= start, entries.c.idx < end)
                .order_by(entries.c.idx)
            )
            return [bytes(h) for (h,) in result]

    def read_tile(self, level: int, index: int) -> bytes:
        """A full tile's 8,192 bytes.

        Raises:
            IntegrityFailure: the tile should exist and does not.
        """
        with self._connect() as conn:
            data = conn.execute(
                sa.select(tiles.c.hashes).where(
                    tiles.c.level == level, tiles.c.idx == index
                )
            ).scalar()
        if data is None:
            raise IntegrityFailure(f"full tile {level}/{index} is missing from storage")
        return bytes(data)

    def read_tile_rows(
        self, level: int, start: int, end: int
    ) -> list[tuple[int, bytes, bytes]]:
        """(index, hashes, root) of full tiles at ``level``, start <= index < end."""
        with self._connect() as conn:
            result = conn.execute(
                sa.select(tiles.c.idx, tiles.c.hashes, tiles.c.root)
                .where(tiles.c.level == level, tiles.c.idx >= start, tiles.c.idx < end)
                .order_by(tiles.c.idx)
            )
            return [(i, bytes(h), bytes(r)) for i, h, r in result]

    def iter_entries(self, start: int = 0, batch: int = 4096) -> Iterator[EntryRow]:
        """Every entry from ``start`` on, in index order, read in batches."""
        query = sa.select(
            entries.c.idx, entries.c.leaf_hash, entries.c.data, entries.c.leaf_key
        )
        for i, h, d, k in self._pages(query, entries.c.idx, start, batch):
            yield EntryRow(i, bytes(h), bytes(d), k)

    def beyond(self, size: int) -> list[str]:
        """Rows that lie beyond a tree of ``size`` entries, one line each.

        Entries, index rows and checkpoints past the size, and full tiles past
        the tiles such a tree has: the writer would collide with them, or read
        them as its own.
        """
        found: list[str] = []
        with self._connect() as conn:
            for column, start, what in (
                (entries.c.idx, size, "entry"),
                (records.c.idx, size, "record index row of entry"),
                (checkpoints.c.size, size + 1, "checkpoint of size"),
            ):
                first = conn.execute(
                    sa.select(sa.func.min(column)).where(column >= start)
                ).scalar()
                if first is not None:
                    found.append(f"{what} {first} lies beyond the signed size {size}")
            level, width = 0, size
            while True:
                full = width // 256
                extra = conn.execute(
                    sa.select(sa.func.min(tiles.c.idx)).where(
                        tiles.c.level == level, tiles.c.idx >= full
                    )
                ).scalar()
                if extra is not None:
                    found.append(f"tile {level}/{extra} lies beyond the tree")
                if full == 0:
                    break
                level, width = level + 1, full
            deeper = conn.execute(
                sa.select(sa.func.min(tiles.c.level)).where(tiles.c.level > level)
            ).scalar()
            if deeper is not None:
                found.append(f"a tile at level {deeper} lies beyond the tree")
        return found

    def iter_tiles(self, batch: int = 1024) -> Iterator[tuple[int, int, bytes, bytes]]:
        """Every stored tile as (level, index, hashes, root), by level then index."""
        position = (-1, -1)
        while True:
            with self._connect() as conn:
                result = conn.execute(
                    sa.select(tiles.c.level, tiles.c.idx, tiles.c.hashes, tiles.c.root)
                    .where(sa.tuple_(tiles.c.level, tiles.c.idx) > sa.tuple_(*position))
                    .order_by(tiles.c.level, tiles.c.idx)
                    .limit(batch)
                )
                rows = [(lv, i, bytes(h), bytes(r)) for lv, i, h, r in result]
            if not rows:
                return
            yield from rows
            position = (rows[-1][0], rows[-1][1])

    def iter_checkpoints(self, batch: int = 4096) -> Iterator[StoredCheckpoint]:
        """Every stored checkpoint in size order."""
        for r in self._pages(sa.select(checkpoints), checkpoints.c.size, 0, batch):
            yield StoredCheckpoint(r.size, bytes(r.root), bytes(r.note), r.made_at_ms)

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        """The checkpoint first signed at ``size``, if any."""
        with self._connect() as conn:
            r = conn.execute(
                sa.select(checkpoints).where(checkpoints.c.size == size)
            ).first()
        if r is None:
            return None
        return StoredCheckpoint(r.size, bytes(r.root), bytes(r.note), r.made_at_ms)
