"""The writer's side of storage: its lock, and each batch in one transaction.

One writer at a time: SQLite takes an exclusive lock file beside the database,
PostgreSQL a session advisory lock. Every write of a batch (entries, full tiles,
checkpoint, tree head) is one transaction, and the head moves by compare-and-swap
on its size. Reads never take the writer's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.errors import IntegrityFailure, StorageUnavailable, WriterLockHeld
from ledger.integrate import FullTile
from ledger.storage.engine import DRIVER_ERRORS, SqlEngine, safe_message
from ledger.storage.rows import EntryRow, Head, RecordRow, leaf_key
from ledger.storage.schema import tiles, tree_head

__all__ = ["SqlWrites"]

log = logging.getLogger("saksi.storage")

_ADVISORY_KEY = 0x53414B5349  # "SAKSI"

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


class SqlWrites(SqlEngine):
    """The writer's lock and its commits."""

    # Set while this writer means to hold PostgreSQL's advisory lock, even
    # when the session that held it is gone (``keep_writer_lock``).
    _lock_wanted = False

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
        conn: Connection | None = None
        try:
            conn = self._engine.connect()
            got = conn.exec_driver_sql(
                f"SELECT pg_try_advisory_lock({_ADVISORY_KEY})"
            ).scalar()
            conn.commit()
        except DRIVER_ERRORS as e:
            if conn is not None:  # never left checked out of the pool
                with contextlib.suppress(*DRIVER_ERRORS):
                    conn.invalidate()
                    conn.close()
            raise StorageUnavailable(
                f"cannot take writer lock: {safe_message(e)}"
            ) from e
        if not got:
            conn.close()
            raise WriterLockHeld(
                "another sequencer holds this database's writer lock; stop it first"
            )
        self._lock_conn = conn
        self._lock_wanted = True

    def keep_writer_lock(self) -> None:
        """Make sure this writer still holds its lock; take it again if it was lost.

        PostgreSQL's advisory lock lives as long as the session that took it:
        a restart of the database server, or the session terminated, ends it
        silently, and a second sequencer could then start beside this one.
        (SQLite's lock file is this process's own and outlives any fault of
        the database.)

        Raises:
            WriterLockHeld: another sequencer took the lock meanwhile.
            StorageUnavailable: the database cannot be reached.
        """
        if not self._lock_wanted:
            return
        conn = self._lock_conn
        if conn is not None:
            try:
                # Only an unlock or the session's end gives the lock up.
                conn.exec_driver_sql("SELECT 1").scalar()
                conn.commit()
                return
            except DRIVER_ERRORS:
                pass  # that session is gone, and its lock with it
            with contextlib.suppress(*DRIVER_ERRORS):
                conn.invalidate()
                conn.close()
            self._lock_conn = None
        self.acquire_writer_lock()
        log.warning("the database lost the writer lock (restarted?): taken again")

    def release_writer_lock(self) -> None:
        """Give up the writer lock (also released when the process dies)."""
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None
        self._lock_wanted = False
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
                f"conflicting rows already stored: {safe_message(e)}"
            ) from e
        except DRIVER_ERRORS as e:
            self.count_failure("write")
            raise StorageUnavailable(f"append not committed: {safe_message(e)}") from e
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
        except DRIVER_ERRORS as e:
            self.count_failure("write")
            raise StorageUnavailable(f"refresh not committed: {safe_message(e)}") from e

    def close(self) -> None:
        """Release the writer lock and every pooled connection."""
        self.release_writer_lock()
        super().close()
