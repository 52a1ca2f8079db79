"""The SQL engine under the log: connecting, durability, schema, shared helpers.

SQLite runs in WAL mode with synchronous=FULL (a committed append survives power
loss); PostgreSQL must have fsync and synchronous_commit on. Either is refused with
weaker settings. Driver errors become ``StorageUnavailable`` without echoing
connection strings. The concerns built on this are in ``writes`` (the writer's
lock and its one-transaction commits), ``logreads`` (entries, tiles, heads,
checkpoints) and ``recordindex`` (the record index); ``sql.SqlStorage`` is all
of them on one engine.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, Engine, make_url

from ledger.errors import StorageUnavailable
from ledger.storage.guards import trigger_problems
from ledger.storage.rows import Head, LogMeta
from ledger.storage.schema import checkpoints, log_meta, tree_head

__all__ = ["DRIVER_ERRORS", "SqlEngine", "normalize_url", "safe_message"]

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# What a failing database raises. A driver can raise ``OSError`` itself, before
# SQLAlchemy sees a DB-API error: psycopg does when the process has no file
# descriptor left to wait on a new connection with. Either way the database is
# unavailable, which the writer answers with 503 and recovers from; it is not
# a bug that stops the writes.
DRIVER_ERRORS: tuple[type[Exception], ...] = (sa.exc.SQLAlchemyError, OSError)
_IN_CHUNK = 500


def safe_message(error: Exception) -> str:
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


class SqlEngine:
    """One SQL database: the connection pool and what every concern shares."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Reads on PostgreSQL run each statement on its own (autocommit): a
        # read in a transaction cost a BEGIN and a ROLLBACK, two more round
        # trips, and gained nothing at READ COMMITTED (every statement takes
        # its own snapshot either way). Writes use ``_engine.begin()``.
        self._reads = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )
        self._lock_file: int | None = None
        # Database errors seen, by operation (``read``, ``write``): the
        # service's metrics report them.
        self._failures = {"read": 0, "write": 0}
        self._failures_lock = threading.Lock()

    @classmethod
    def open(cls, url: str | URL) -> Self:
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

            @sa.event.listens_for(engine, "handle_error")
            def _read_only(context: sa.engine.ExceptionContext) -> None:
                # A connection opened while the file could not be written is
                # read-only for good: drop it from the pool, so that writes
                # work again once the file is writable.
                if "readonly database" in str(context.original_exception):
                    context.is_disconnect = True

        else:
            engine = sa.create_engine(parsed, pool_size=8, max_overflow=16)
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
    def _connect(self, *, streamed: bool = False) -> Iterator[Connection]:
        """A connection for reads (autocommit on PostgreSQL).

        ``streamed``: in a transaction instead, for a server-side cursor
        (``yield_per``), which PostgreSQL declares only in one.
        """
        try:
            with (self._engine if streamed else self._reads).connect() as conn:
                yield conn
        except DRIVER_ERRORS as e:
            self.count_failure("read")
            raise StorageUnavailable(f"database read failed: {safe_message(e)}") from e

    def count_failure(self, operation: str) -> None:
        """Count one database error of ``operation`` (``read`` or ``write``)."""
        with self._failures_lock:
            self._failures[operation] += 1

    def failures(self) -> dict[str, int]:
        """Database errors seen since start, by operation."""
        with self._failures_lock:
            return dict(self._failures)

    def pool_status(self) -> dict[str, int]:
        """The connection pool: its size, connections in use, idle and overflow."""
        pool: Any = self._engine.pool
        status = {}
        for name, method in (
            ("size", "size"),
            ("in_use", "checkedout"),
            ("idle", "checkedin"),
            ("overflow", "overflow"),
        ):
            value = getattr(pool, method, None)
            if callable(value):
                status[name] = max(0, int(value()))
        return status

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
            raise StorageUnavailable(f"migration failed: {safe_message(e)}") from e

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
            raise StorageUnavailable(f"cannot create the log: {safe_message(e)}") from e

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
        # The driver's own cursor and fetchall: a row at a time through
        # SQLAlchemy's result costs more than the lookup.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for i in range(0, len(values), _IN_CHUNK):
                chunk = tuple(values[i : i + _IN_CHUNK])
                marks = ", ".join(["?"] * len(chunk))  # placeholders only
                cursor.execute(f"{select} WHERE {column} IN ({marks})", chunk)
                rows.extend(cursor.fetchall())
        except sqlite3.Error as e:
            # As SQLAlchemy would raise it: the callers' handling is for that.
            raise sa.exc.DBAPIError(select, None, e) from e
        finally:
            cursor.close()
        return rows

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

    def guard_problems(self) -> list[str]:
        """Append-only triggers missing, altered, disabled or foreign, a line each."""
        with self._connect() as conn:
            return trigger_problems(conn)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()
