"""SQLAlchemy Core storage for the log, on SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with synchronous=FULL (a committed append survives power
loss); PostgreSQL must have fsync and synchronous_commit on. Either is refused with
weaker settings. One writer at a time: SQLite takes an exclusive lock file beside
the database, PostgreSQL a session advisory lock. Every write of a batch (entries,
full tiles, checkpoint, tree head) is one transaction, and the head moves by
compare-and-swap on its size. Reads never take the writer's lock.

This is the only module that speaks SQL; it turns driver errors into
``StorageUnavailable`` without echoing connection strings.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, Engine, make_url

from ledger.errors import IntegrityFailure, StorageUnavailable, WriterLockHeld
from ledger.integrate import FullTile
from ledger.storage.guards import trigger_problems
from ledger.storage.schema import (
    checkpoints,
    entries,
    log_meta,
    records,
    tiles,
    tree_head,
)

__all__ = [
    "EntryRow",
    "Head",
    "LogMeta",
    "RecordRow",
    "SqlStorage",
    "StoredCheckpoint",
    "leaf_key",
]

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ADVISORY_KEY = 0x53414B5349  # "SAKSI"
_IN_CHUNK = 500
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


# The writer's per-commit statements, straight to each driver (its paramstyle).
_SQL = {
    dialect: {
        "checkpoint": "INSERT INTO checkpoints (size, root, note, made_at_ms) "
        "VALUES (?, ?, ?, ?)".replace("?", mark),
        "move_head": "UPDATE tree_head SET size = ?, root = ?, note = ?, "
        "made_at_ms = ?, seal = ? WHERE id = 1 AND size = ?".replace("?", mark),
    }
    for dialect, mark in (("sqlite", "?"), ("postgresql", "%s"))
}


@dataclass(frozen=True, slots=True)
class LogMeta:
    """What a log is: its origin line and its checkpoint verifier key string."""

    origin: str
    verifier_key: str


@dataclass(frozen=True, slots=True)
class Head:
    """The current signed tree head and when it was (re)signed, in Unix ms.

    ``seal`` is the writer's seal of the record index at this head (see
    ``ledger.seal``), None where none was written yet.
    """

    size: int
    root: bytes
    note: bytes
    made_at_ms: int
    seal: bytes | None = None


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """The first checkpoint signed at a size."""

    size: int
    root: bytes
    note: bytes
    made_at_ms: int


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One stored entry; ``leaf_key`` is as stored (None when not read)."""

    index: int
    leaf_hash: bytes
    data: bytes
    leaf_key: int | None = None


@dataclass(frozen=True, slots=True)
class RecordRow:
    """The record index row of one logged record."""

    index: int
    subject: str
    revision: int
    schema: str
    payload_hash: bytes


def leaf_key(leaf_hash: bytes) -> int:
    """The indexed lookup key of a leaf hash: its first 8 bytes, signed big-endian."""
    return int.from_bytes(leaf_hash[:8], "big", signed=True)


def _safe_message(error: Exception) -> str:
    """First line of a driver error, never the connection URL or parameters."""
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0][:200]}" if text else type(orig).__name__


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain ``postgresql://`` means the psycopg 3 driver.

    Raises:
        ValueError: not a SQLite or PostgreSQL URL.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {parsed.get_backend_name()!r}")
    return parsed


class SqlStorage:
    """Entries, tiles, checkpoints and the tree head in one SQL database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock_file: int | None = None
        self._lock_conn: Connection | None = None

    @classmethod
    def open(cls, url: str | URL) -> SqlStorage:
        """Connect, enforce durable settings, and return the storage.

        Raises:
            StorageUnavailable: the database cannot be reached or is not durable.
            ValueError: unsupported URL.
        """
        parsed = normalize_url(url)
        if parsed.get_backend_name() == "sqlite":
            engine = sa.create_engine(parsed, pool_size=8, max_overflow=16)

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: object) -> None:  # noqa: ANN401
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA busy_timeout=30000")
                # 32 MiB of page cache: the leaf-hash index is probed at random.
                cur.execute("PRAGMA cache_size=-32768")
                cur.close()

        else:
            engine = sa.create_engine(
                parsed, pool_size=8, max_overflow=16, pool_pre_ping=True
            )
        storage = cls(engine)
        storage._check_durability()
        return storage

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (tests and tools only)."""
        return self._engine

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as e:
            raise StorageUnavailable(f"database read failed: {_safe_message(e)}") from e

    def _check_durability(self) -> None:
        with self._connect() as conn:
            if self.dialect == "sqlite":
                sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                database = self._engine.url.database
                if sync != 2 or (
                    database not in (None, "", ":memory:") and mode != "wal"
                ):
                    raise StorageUnavailable(
                        "SQLite must run WAL with synchronous=FULL "
                        f"(found {mode}, {sync})"
                    )
            else:
                fsync = conn.exec_driver_sql("SHOW fsync").scalar()
                commit = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
                if fsync != "on" or commit in ("off", "local"):
                    raise StorageUnavailable(
                        "PostgreSQL must run with fsync=on and synchronous_commit on "
                        f"(found fsync={fsync}, synchronous_commit={commit})"
                    )

    # -- schema ----------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic).

        Raises:
            StorageUnavailable: the migration failed.
        """
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self._engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except sa.exc.SQLAlchemyError as e:
            raise StorageUnavailable(f"migration failed: {_safe_message(e)}") from e

    def is_initialized(self) -> bool:
        """True once a log (meta row and head) exists."""
        with self._connect() as conn:
            if not sa.inspect(conn).has_table("tree_head"):
                return False
            return (
                conn.execute(
                    sa.select(sa.func.count()).select_from(tree_head)
                ).scalar_one()
                == 1
            )

    def initialize(self, meta: LogMeta, head: Head) -> None:
        """Create the log: its meta row, the size-0 checkpoint and the head.

        Raises:
            StorageUnavailable: the write failed (e.g. the log already exists).
        """
        row = {
            "size": head.size,
            "root": head.root,
            "note": head.note,
            "made_at_ms": head.made_at_ms,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    sa.insert(log_meta).values(
                        id=1,
                        origin=meta.origin,
                        verifier_key=meta.verifier_key,
                        created_at_ms=head.made_at_ms,
                    )
                )
                conn.execute(sa.insert(checkpoints).values(**row))
                conn.execute(sa.insert(tree_head).values(id=1, **row))
        except sa.exc.SQLAlchemyError as e:
            raise StorageUnavailable(
                f"cannot create the log: {_safe_message(e)}"
            ) from e

    # -- writer ----------------------------------------------------------------

    def acquire_writer_lock(self) -> None:
        """Become the only writer of this database, or fail at once.

        Raises:
            StorageUnavailable: another sequencer holds the lock.
        """
        if self.dialect == "sqlite":
            database = self._engine.url.database
            if not database or database == ":memory:":
                return
            fd = os.open(f"{database}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as e:
                os.close(fd)
                raise WriterLockHeld(
                    "another sequencer is writing to this database; stop it first"
                ) from e
            self._lock_file = fd
            return
        try:
            conn = self._engine.connect()
            got = conn.exec_driver_sql(
                f"SELECT pg_try_advisory_lock({_ADVISORY_KEY})"
            ).scalar()
            conn.commit()
        except sa.exc.SQLAlchemyError as e:
            raise StorageUnavailable(
                f"cannot take writer lock: {_safe_message(e)}"
            ) from e
        if not got:
            conn.close()
            raise WriterLockHeld(
                "another sequencer holds this database's writer lock; stop it first"
            )
        self._lock_conn = conn

    def release_writer_lock(self) -> None:
        """Give up the writer lock (also released when the process dies)."""
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None
        if self._lock_conn is not None:
            # Closing would only return the session to the pool, lock and all:
            # unlock, then drop the underlying connection.
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._lock_conn.exec_driver_sql(
                    f"SELECT pg_advisory_unlock({_ADVISORY_KEY})"
                )
                self._lock_conn.invalidate()
                self._lock_conn.close()
            self._lock_conn = None

    def commit_batch(
        self,
        expected_size: int,
        rows: Sequence[EntryRow],
        full_tiles: Sequence[FullTile],
        make_head: Callable[[], Head],
        record_rows: Sequence[RecordRow] = (),
    ) -> Head:
        """Write a batch and move the head from ``expected_size``, in ONE transaction.

        ``make_head()`` (which signs the new checkpoint) is called inside the
        transaction once the rows are in, so nothing is signed for a batch that
        cannot be stored. Returns the head it made.

        Raises:
            IntegrityFailure: the head was not at ``expected_size`` or an index
                already exists (another writer): nothing was written.
            StorageUnavailable: the database failed; nothing was written.
        """
        try:
            with self._engine.begin() as conn:
                if rows:
                    self._insert_entries(conn, rows)
                if record_rows:
                    self._insert_records(conn, record_rows)
                if full_tiles:
                    conn.execute(
                        sa.insert(tiles),
                        [
                            {
                                "level": t.level,
                                "idx": t.index,
                                "hashes": t.hashes,
                                "root": t.root,
                            }
                            for t in full_tiles
                        ],
                    )
                head = make_head()
                values = (head.size, head.root, head.note, head.made_at_ms)
                if head.size > expected_size:
                    conn.exec_driver_sql(_SQL[self.dialect]["checkpoint"], values)
                moved = conn.exec_driver_sql(
                    _SQL[self.dialect]["move_head"],
                    (*values, head.seal, expected_size),
                ).rowcount
                if moved != 1:
                    raise IntegrityFailure(
                        f"tree head is no longer at size {expected_size}: "
                        "another writer moved it"
                    )
        except sa.exc.IntegrityError as e:
            raise IntegrityFailure(
                f"conflicting rows already stored: {_safe_message(e)}"
            ) from e
        except sa.exc.SQLAlchemyError as e:
            raise StorageUnavailable(f"append not committed: {_safe_message(e)}") from e
        return head

    def _insert_records(self, conn: Connection, rows: Sequence[RecordRow]) -> None:
        """Bulk-insert record index rows, straight to the driver like entries."""
        if self.dialect == "postgresql":
            conn.exec_driver_sql(
                "INSERT INTO records (idx, subject, revision, schema_name, "
                "payload_key, payload_hash) SELECT * FROM unnest(%b::bigint[], "
                "%b::text[], %b::bigint[], %b::text[], %b::bigint[], %b::bytea[])",
                (
                    [r.index for r in rows],
                    [r.subject for r in rows],
                    [r.revision for r in rows],
                    [r.schema for r in rows],
                    [leaf_key(r.payload_hash) for r in rows],
                    [r.payload_hash for r in rows],
                ),
            )
        else:
            conn.exec_driver_sql(
                "INSERT INTO records (idx, subject, revision, schema_name, "
                "payload_key, payload_hash) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.index,
                        r.subject,
                        r.revision,
                        r.schema,
                        leaf_key(r.payload_hash),
                        r.payload_hash,
                    )
                    for r in rows
                ],
            )

    def _insert_entries(self, conn: Connection, rows: Sequence[EntryRow]) -> None:
        """Bulk-insert entries, straight to the driver (the hot path of appends).

        One ``unnest`` statement on PostgreSQL, one executemany on SQLite.
        """
        if self.dialect == "postgresql":
            conn.exec_driver_sql(
                "INSERT INTO entries (idx, leaf_key, leaf_hash, data) "
                "SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bytea[], "
                "%b::bytea[])",
                (
                    [r.index for r in rows],
                    [leaf_key(r.leaf_hash) for r in rows],
                    [r.leaf_hash for r in rows],
                    [r.data for r in rows],
                ),
            )
        else:
            conn.exec_driver_sql(
                "INSERT INTO entries (idx, leaf_key, leaf_hash, data) "
                "VALUES (?, ?, ?, ?)",
                [(r.index, leaf_key(r.leaf_hash), r.leaf_hash, r.data) for r in rows],
            )

    def refresh_head(
        self, head: Head, made_at_ms: int, seal: bytes | None = None
    ) -> None:
        """Record a fresh signing time for an unchanged head (idle log).

        With ``seal``, also store the writer's seal of the record index.

        Raises:
            IntegrityFailure: the head moved under us.
            StorageUnavailable: the database failed.
        """
        try:
            with self._engine.begin() as conn:
                moved = conn.execute(
                    sa.update(tree_head)
                    .where(
                        tree_head.c.id == 1,
                        tree_head.c.size == head.size,
                        tree_head.c.made_at_ms == head.made_at_ms,
                    )
                    .values(
                        made_at_ms=made_at_ms,
                        **({} if seal is None else {"seal": seal}),
                    )
                ).rowcount
                if moved != 1:
                    raise IntegrityFailure("tree head moved during a refresh")
        except sa.exc.SQLAlchemyError as e:
            raise StorageUnavailable(
                f"refresh not committed: {_safe_message(e)}"
            ) from e

    # -- reads -----------------------------------------------------------------

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

    def _where_in(
        self,
        conn: Connection,
        select: str,
        column: str,
        pg_type: str,
        values: list[Any],
    ) -> list[Any]:
        """Rows of ``select`` whose ``column`` is one of ``values``, at driver level.

        ``select`` and ``column`` are constants of this module; the values are
        always bound. SQLAlchemy's expression layer costs more per statement than
        these lookups do, and the writer makes them on every commit.
        """
        if self.dialect == "postgresql":
            return list(
                conn.exec_driver_sql(
                    f"{select} WHERE {column} = ANY(%b::{pg_type}[])", (values,)
                ).all()
            )
        rows: list[Any] = []
        for i in range(0, len(values), _IN_CHUNK):
            chunk = tuple(values[i : i + _IN_CHUNK])
            marks = ", ".join(["?"] * len(chunk))  # placeholders only
            rows.extend(
                conn.exec_driver_sql(f"{select} WHERE {column} IN ({marks})", chunk)
            )
        return rows

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

    def record_heads(self, subjects: Sequence[str]) -> dict[str, RecordRow]:
        """The latest logged revision of each subject that has one."""
        return self.chain_state((), subjects)[1]

    def records_by_payload(
        self, payload_hashes: Sequence[bytes]
    ) -> dict[bytes, RecordRow]:
        """The index row of each logged record payload hash (first logged wins)."""
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
            if digest in wanted and (
                digest not in found or row.index < found[digest].index
            ):
                found[digest] = row
        return found

    def chain_state(
        self, payload_hashes: Sequence[bytes], subjects: Sequence[str]
    ) -> tuple[dict[bytes, int], dict[str, RecordRow]]:
        """What the record gate reads before deciding a batch, on one connection.

        Returns the entry index of each payload hash already logged, and the
        latest logged revision of each subject that has one.
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

    def _pages(
        self, query: sa.Select[Any], key: sa.Column[Any], start: int, batch: int
    ) -> Iterator[Any]:
        """Rows of ``query`` with ``key >= start`` in key order, ``batch`` at a time.

        Keyset pagination on an integer key: each page is its own short read, so a
        whole-log scan never holds a connection or a snapshot for long.
        """
        position = start
        while True:
            with self._connect() as conn:
                rows = conn.execute(
                    query.where(key >= position).order_by(key).limit(batch)
                ).all()
            if not rows:
                return
            yield from rows
            position = getattr(rows[-1], key.name) + 1

    def iter_entries(self, start: int = 0, batch: int = 4096) -> Iterator[EntryRow]:
        """Every entry from ``start`` on, in index order, read in batches."""
        query = sa.select(
            entries.c.idx, entries.c.leaf_hash, entries.c.data, entries.c.leaf_key
        )
        for i, h, d, k in self._pages(query, entries.c.idx, start, batch):
            yield EntryRow(i, bytes(h), bytes(d), k)

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
                finally:
                    cursor.close()
            if not rows:
                return
            if not isinstance(rows[0][4], bytes):  # memoryview from some drivers
                rows = [(i, s, r, c, bytes(p)) for i, s, r, c, p in rows]
            yield from rows
            position = rows[-1][0] + 1

    def guard_problems(self) -> list[str]:
        """Append-only triggers missing, altered, disabled or foreign, a line each."""
        with self._connect() as conn:
            return trigger_problems(conn)

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

    def close(self) -> None:
        """Release the writer lock and every pooled connection."""
        self.release_writer_lock()
        self._engine.dispose()
