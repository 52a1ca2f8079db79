"""The writer's side of storage: its lock, and each batch in one transaction.

One writer at a time: SQLite takes an exclusive lock file beside the database,
PostgreSQL the sequencer lease (``lease``), whose fencing token is checked
first in every write transaction. Every write of a batch (entries, full tiles,
checkpoint, tree head) is one transaction, and the head moves by compare-and-swap
on its size. Reads never take the writer's lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.errors import (
    IntegrityFailure,
    LeaseLost,
    StorageUnavailable,
    WriterLockHeld,
)
from ledger.integrate import FullTile
from ledger.storage.engine import DRIVER_ERRORS, safe_message
from ledger.storage.lease import SqlLease
from ledger.storage.queue import QueueRow, SqlQueue
from ledger.storage.rows import EntryRow, Head, RecordRow, leaf_key
from ledger.storage.schema import tiles, tree_head

__all__ = ["SqlWrites"]

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


class SqlWrites(SqlLease, SqlQueue):
    """The writer's lock and its commits."""

    # How long ``acquire_writer_lock`` waits for a held lease to run out (a
    # writer that was killed leaves one behind for ``lease_ttl`` seconds).
    lease_wait = 0.0

    def acquire_writer_lock(self) -> None:
        """Become the only writer of this database, or fail at once.

        SQLite: an exclusive lock file beside the database. PostgreSQL: the
        sequencer lease, whose fencing token every later commit checks.

        Raises:
            WriterLockHeld: another sequencer holds the lock or the lease.
            StorageUnavailable: the database cannot be reached.
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
        waited_until = time.monotonic() + self.lease_wait
        while self.take_lease() is None and time.monotonic() < waited_until:
            time.sleep(min(0.25, self.lease_ttl / 10))
        if self.fence is None:
            raise WriterLockHeld(
                "another sequencer holds this database's lease; stop it first "
                "(or wait: a lease runs out "
                f"{self.lease_ttl:g} s after its holder stops renewing it)"
            )
        self.keep_renewing()

    def keep_writer_lock(self) -> None:
        """Make sure this writer still holds its lease (PostgreSQL), renewing it.

        (SQLite's lock file is this process's own and outlives any fault of
        the database.)

        Raises:
            LeaseLost: another process took the lease over.
            StorageUnavailable: the database cannot be reached.
        """
        if self.dialect == "sqlite":
            return
        renewed = self.renew_lease()
        if renewed is None:
            raise StorageUnavailable("cannot renew the sequencer lease now")
        if not renewed:
            raise LeaseLost(
                "another process took this sequencer's lease over: it writes no more"
            )

    def release_writer_lock(self) -> None:
        """Give up the writer lock (also released when the process dies)."""
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None
        self.drop_lease()

    def commit_batch(
        self,
        expected_size: int,
        rows: Sequence[EntryRow],
        full_tiles: Sequence[FullTile],
        make_head: Callable[[], Head],
        record_rows: Sequence[RecordRow] = (),
        decided: Sequence[QueueRow] = (),
    ) -> Head:
        """Write a batch and move the head from ``expected_size``, in ONE transaction.

        ``make_head()`` (which signs the new checkpoint) is called inside the
        transaction once the rows are in, so nothing is signed for a batch that
        cannot be stored. Returns the head it made. ``decided``: the outcomes
        of queued submissions this batch decides (``ledger.cluster``), stored
        and taken off the queue in the same transaction. A lease holder's
        fencing token is checked first.

        Raises:
            LeaseLost: another process holds the sequencer lease: nothing was
                written.
            IntegrityFailure: the head was not at ``expected_size`` or an index
                already exists (another writer): nothing was written.
            StorageUnavailable: the database failed; nothing was written.
        """
        try:
            with self._engine.begin() as conn:
                self._check_fence(conn)
                if decided:
                    self._settle(conn, decided)
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

    def settle_queue(self, decided: Sequence[QueueRow]) -> None:
        """Store outcomes of queued submissions a batch decided without a commit.

        (Every one refused, or a repeat of an entry already logged.)

        Raises:
            LeaseLost: another process holds the sequencer lease.
            StorageUnavailable: the database failed; nothing was stored.
        """
        if not decided:
            return
        try:
            with self._engine.begin() as conn:
                self._check_fence(conn)
                self._settle(conn, decided)
        except DRIVER_ERRORS as e:
            self.count_failure("write")
            raise StorageUnavailable(f"outcomes not stored: {safe_message(e)}") from e

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
                self._check_fence(conn)
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

    def put_witnessed(self, size: int, note: bytes) -> None:
        """Store ``note``, a checkpoint of ``size`` with its cosignatures.

        Kept only if no note of a larger size is stored already: a process
        whose round ran late never replaces a newer one.

        Raises:
            StorageUnavailable: the database failed.
        """
        statement = sa.text(
            "INSERT INTO witnessed_checkpoint (id, size, note) "
            "VALUES (1, :size, :note) ON CONFLICT (id) DO UPDATE "
            "SET size = excluded.size, note = excluded.note "
            "WHERE witnessed_checkpoint.size <= excluded.size"
        ).bindparams(sa.bindparam("note", type_=sa.LargeBinary))
        try:
            with self._engine.begin() as conn:
                conn.execute(statement, {"size": size, "note": note})
        except DRIVER_ERRORS as e:
            self.count_failure("write")
            raise StorageUnavailable(
                f"witnessed checkpoint not stored: {safe_message(e)}"
            ) from e

    def close(self) -> None:
        """Release the writer lock and every pooled connection."""
        self.release_writer_lock()
        super().close()
