"""Queries of the record index: subjects, revisions, payload hashes, schemas.

The record index is derived from the entries (the writer seals it at every
commit, ``ledger.seal``); what these queries return points at entries, which the
caller reads and proves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ledger.storage.engine import SqlEngine
from ledger.storage.rows import RecordRow, leaf_key
from ledger.storage.schema import records

__all__ = ["SqlRecordIndex"]

_RECORD_SELECT = "SELECT idx, subject, revision, schema_name, payload_hash FROM records"
_RECORD_COLUMNS = (
    records.c.idx,
    records.c.subject,
    records.c.revision,
    records.c.schema_name,
    records.c.payload_hash,
)


def _record_row(row: Any) -> RecordRow:  # noqa: ANN401 - a driver's row tuple
    idx, subject, revision, schema, payload_hash = row
    return RecordRow(idx, subject, revision, schema, bytes(payload_hash))


class SqlRecordIndex(SqlEngine):
    """Queries of the records table."""

    def record_heads(
        self, subjects: Sequence[str], below: int | None = None
    ) -> dict[str, RecordRow]:
        """The latest revision of each subject that has one (before entry ``below``).

        A reader passes the size of the tree it reads: rows of entries the
        tree does not hold yet are not its heads.
        """
        return self.chain_state((), subjects, below)[1]

    def records_by_payload(
        self, payload_hashes: Sequence[bytes], below: int | None = None
    ) -> dict[bytes, RecordRow]:
        """The index row of each logged record payload hash (first logged wins).

        Only rows of entries before ``below``, where it is given.
        """
        wanted = set(payload_hashes)
        keys = sorted({leaf_key(h) for h in wanted})
        if not keys:
            return {}
        with self._connect() as conn:
            rows = self._where_in(
                conn,
                _RECORD_SELECT,
                "payload_key",
                "bigint",
                keys,
            )
        found: dict[bytes, RecordRow] = {}
        for row in map(_record_row, rows):
            digest = row.payload_hash
            if below is not None and row.index >= below:
                continue
            if digest in wanted and (
                digest not in found or row.index < found[digest].index
            ):
                found[digest] = row
        return found

    def chain_state(
        self,
        payload_hashes: Sequence[bytes],
        subjects: Sequence[str],
        below: int | None = None,
    ) -> tuple[dict[bytes, int], dict[str, RecordRow]]:
        """What the record gate reads before deciding a batch, on one connection.

        Returns the entry index of each payload hash already logged, and the
        latest logged revision of each subject that has one (of the entries
        before ``below``, where it is given).
        """
        wanted = set(payload_hashes)
        keys = sorted({leaf_key(h) for h in wanted})
        with self._connect() as conn:
            payload_rows = (
                self._where_in(
                    conn,
                    "SELECT payload_hash, idx FROM records",
                    "payload_key",
                    "bigint",
                    keys,
                )
                if keys
                else []
            )
            head_rows = (
                self._where_in(
                    conn,
                    _RECORD_SELECT,
                    "subject",
                    "text",
                    sorted(set(subjects)),
                )
                if subjects
                else []
            )
        found: dict[bytes, int] = {}
        for stored, index in payload_rows:
            if bytes(stored) in wanted:
                found[bytes(stored)] = index
        heads: dict[str, RecordRow] = {}
        for row in map(_record_row, head_rows):
            if below is not None and row.index >= below:
                continue
            known = heads.get(row.subject)
            if known is None or row.revision > known.revision:
                heads[row.subject] = row
        return found, heads

    def _rows_under(self, prefix: str, since: int = 0) -> list[RecordRow]:
        """Record rows of subjects starting with ``prefix`` (revision >= since).

        ``prefix`` is in the subjects' alphabet (letters, digits, ``/._-``), so
        it is matched literally; the match is confirmed in Python too.
        """
        if not all(c.isalnum() or c in "/._-" for c in prefix):
            raise ValueError(f"not a subject prefix: {prefix[:60]!r}")
        like = records.c.subject.like(prefix.replace("_", "\\_") + "%", escape="\\")
        with self._connect() as conn:
            result = conn.execute(
                sa.select(*_RECORD_COLUMNS)
                .where(like, records.c.revision >= since)
                .order_by(records.c.idx)
            )
            return [_record_row(row) for row in result if row[1].startswith(prefix)]

    def revisions_under(self, prefix: str, since: int = 1) -> list[RecordRow]:
        """Each revision >= ``since`` of each subject under ``prefix``, in log order."""
        return self._rows_under(prefix, since)

    def changed_records(self, start: int, end: int) -> list[RecordRow]:
        """Record rows in [start, end) that are recaps or later revisions, in order."""
        with self._connect() as conn:
            result = conn.execute(
                sa.select(*_RECORD_COLUMNS)
                .where(
                    records.c.idx >= start,
                    records.c.idx < end,
                    sa.or_(
                        records.c.schema_name == "results.recap/v1",
                        records.c.revision > 0,
                    ),
                )
                .order_by(records.c.idx)
            )
            return [_record_row(row) for row in result]

    def subject_indices(self, subject: str) -> list[int]:
        """Entry indices of every revision of ``subject``, oldest first."""
        with self._connect() as conn:
            result = conn.execute(
                sa.select(records.c.idx)
                .where(records.c.subject == subject)
                .order_by(records.c.revision)
            )
            return [idx for (idx,) in result]

    def record_indices(
        self, schemas: Sequence[str], start: int = 0, end: int | None = None
    ) -> list[int]:
        """Entry indices of the records of these schemas in [start, end), in order."""
        query = sa.select(records.c.idx).where(
            records.c.schema_name.in_(list(schemas)), records.c.idx >= start
        )
        if end is not None:
            query = query.where(records.c.idx < end)
        with self._connect() as conn:
            return [idx for (idx,) in conn.execute(query.order_by(records.c.idx))]

    def scan_records(
        self, end: int, start: int = 0, batch: int = 20_000
    ) -> Iterator[tuple[int, str, int, str, bytes]]:
        """Every record index row in [start, end), in index order, as tuples.

        What the writer's start-up streams to recompute its seal: driver-level
        pages (keyset on the index), no row objects.
        """
        mark = "%s" if self.dialect == "postgresql" else "?"
        query = (
            "SELECT idx, subject, revision, schema_name, payload_hash "  # noqa: S608
            f"FROM records WHERE idx >= {mark} AND idx < {mark} "
            f"ORDER BY idx LIMIT {mark}"
        )
        position = start
        while position < end:
            with self._connect() as conn:
                # The driver's own cursor: SQLAlchemy's row objects cost more
                # than the hashing the caller does with each row.
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:
                    cursor.execute(query, (position, end, batch))
                    rows = cursor.fetchall()
                except conn.dialect.loaded_dbapi.Error as e:
                    # As SQLAlchemy would raise it: ``_connect`` makes it
                    # StorageUnavailable (a raw driver error would stop the
                    # writer as if it were a bug).
                    raise sa.exc.DBAPIError(query, None, e) from e
                finally:
                    cursor.close()
            if not rows:
                return
            if not isinstance(rows[0][4], bytes):  # memoryview from some drivers
                rows = [(i, s, r, c, bytes(p)) for i, s, r, c, p in rows]
            yield from rows
            position = rows[-1][0] + 1

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
        """Rows in [start, end) that match, and rows of the ``also`` schemas.

        A row matches when its subject is one of ``subjects`` (if any), its
        schema one of ``schemas`` (if any) and its subject contains
        ``containing`` (if given). Rows of ``also`` are in [0, end). In entry
        order, a page at a time; the database does the filtering.
        """
        wanted: list[Any] = [records.c.idx >= start]
        if subjects:
            wanted.append(records.c.subject.in_(list(subjects)))
        if schemas:
            wanted.append(records.c.schema_name.in_(list(schemas)))
        if containing is not None:
            yield from self._containing(end, wanted, containing, also, batch)
            return
        either = sa.and_(*wanted)
        if also:
            either = sa.or_(either, records.c.schema_name.in_(list(also)))
        query = sa.select(*_RECORD_COLUMNS).where(records.c.idx < end, either)
        for row in self._pages(query, records.c.idx, 0, batch):
            yield _record_row(row)

    def _containing(
        self,
        end: int,
        wanted: list[Any],
        containing: str,
        also: Sequence[str],
        batch: int,
    ) -> Iterator[RecordRow]:
        """``find_records`` of a substring: the subject index scanned, not the table.

        The substring is looked for in the subject index (a covering scan, a
        fraction of the table's pages), its rows then read by their index; the
        ``also`` rows come from the schema index. One statement, its rows
        streamed: keyset pages would scan the subject index once a page.
        """
        inner = sa.select(records.c.idx).where(
            records.c.subject.contains(containing, autoescape=True)
        )
        parts = [
            sa.select(*_RECORD_COLUMNS).where(
                records.c.idx.in_(inner), records.c.idx < end, *wanted
            )
        ]
        if also:
            parts.append(
                sa.select(*_RECORD_COLUMNS).where(
                    records.c.schema_name.in_(list(also)), records.c.idx < end
                )
            )
        union = sa.union(*parts).subquery()
        query = sa.select(*union.c).order_by(union.c.idx)
        with self._connect(streamed=True) as conn:
            result = conn.execution_options(yield_per=batch).execute(query)
            for row in result:
                yield _record_row(row)

    def iter_records(self, batch: int = 4096) -> Iterator[RecordRow]:
        """Every record index row, in entry order, read in batches."""
        query = sa.select(
            records.c.idx,
            records.c.subject,
            records.c.revision,
            records.c.schema_name,
            records.c.payload_hash,
        )
        for i, subject, revision, schema, h in self._pages(
            query, records.c.idx, 0, batch
        ):
            yield RecordRow(i, subject, revision, schema, bytes(h))
