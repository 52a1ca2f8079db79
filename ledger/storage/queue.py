"""The write queue between a cluster's API processes and its sequencer (PostgreSQL).

An API process queues the submissions it has checked (``enqueue``) and waits
for their outcomes; the sequencer reads the queue (``queued``), decides, and
in the transaction of its commit stores each outcome and takes the decided
rows off the queue (``_settle``); the process that queued them reads the
outcomes (``take_outcomes``) and deletes them once handed over. ``NOTIFY``
(delivered only when a transaction commits) wakes each side: ``saksi_queue``
the sequencer, ``saksi_done`` the API processes; each also polls, so a lost
notification costs a poll interval, never a write. Rows are opaque here:
their bodies and MACs are ``ledger.cluster``'s.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

from sqlalchemy.engine import Connection, Engine

from ledger.errors import StorageUnavailable
from ledger.storage.engine import DRIVER_ERRORS, SqlEngine, safe_message

__all__ = ["DONE_CHANNEL", "QUEUE_CHANNEL", "Listener", "QueueRow", "SqlQueue"]

log = logging.getLogger("saksi.storage")

QUEUE_CHANNEL = "saksi_queue"
DONE_CHANNEL = "saksi_done"
# An outcome nobody took (its process died first) is dropped after this long.
OUTCOME_KEPT_S = 600
OUTCOME_SWEEP_S = 10.0  # how often a sequencer sweeps them

QueueRow = tuple[int, bytes, bytes]  # (id, body, mac)


class SqlQueue(SqlEngine):
    """Queue rows and outcome rows, on PostgreSQL."""

    _swept = -OUTCOME_SWEEP_S  # when outcomes were last swept (monotonic)

    def _needs_postgresql(self) -> None:
        if self.dialect != "postgresql":
            raise StorageUnavailable("the write queue needs PostgreSQL")

    def enqueue(self, rows: Sequence[tuple[bytes, bytes]]) -> list[int]:
        """Queue ``(body, mac)`` rows, in order; their ids, in the same order.

        Raises:
            StorageUnavailable: the database failed (nothing was queued).
        """
        self._needs_postgresql()
        if not rows:
            return []
        try:
            with self._engine.begin() as conn:
                ids = [
                    int(r[0])
                    for r in conn.exec_driver_sql(
                        "SELECT nextval(pg_get_serial_sequence('write_queue', 'id')) "
                        "FROM generate_series(1, %s)",
                        (len(rows),),
                    ).all()
                ]
                conn.exec_driver_sql(
                    "INSERT INTO write_queue (id, body, mac) SELECT * FROM "
                    "unnest(%b::bigint[], %b::bytea[], %b::bytea[])",
                    (ids, [r[0] for r in rows], [r[1] for r in rows]),
                )
                conn.exec_driver_sql(f"NOTIFY {QUEUE_CHANNEL}")
        except DRIVER_ERRORS as e:
            self.count_failure("write")
            raise StorageUnavailable(f"not queued: {safe_message(e)}") from e
        return ids

    def queued(self, limit: int) -> list[QueueRow]:
        """The oldest ``limit`` rows still undecided, oldest first.

        Raises:
            StorageUnavailable: the database cannot be read.
        """
        self._needs_postgresql()
        with self._connect() as conn:
            return [
                (int(r[0]), bytes(r[1]), bytes(r[2]))
                for r in conn.exec_driver_sql(
                    "SELECT id, body, mac FROM write_queue ORDER BY id LIMIT %s",
                    (limit,),
                ).all()
            ]

    def queue_length(self) -> int:
        """How many rows wait for the sequencer now.

        Raises:
            StorageUnavailable: the database cannot be read.
        """
        self._needs_postgresql()
        with self._connect() as conn:
            return int(
                conn.exec_driver_sql("SELECT count(*) FROM write_queue").scalar_one()
            )

    def take_outcomes(
        self, ids: Sequence[int], delivered: Sequence[int] = ()
    ) -> list[QueueRow]:
        """The outcomes decided for ``ids``; those ``delivered`` are deleted.

        An outcome is read, handed over, and deleted only by a later call
        (its id in ``delivered``): a database that fails after a delete
        committed but before its answer arrived would otherwise lose the
        outcome, and its writer would wait in vain. One statement: a
        data-modifying ``WITH`` and the ``SELECT`` share one snapshot.

        Raises:
            StorageUnavailable: the database failed (nothing was deleted).
        """
        self._needs_postgresql()
        if not ids and not delivered:
            return []
        try:
            with self._engine.begin() as conn:
                return [
                    (int(r[0]), bytes(r[1]), bytes(r[2]))
                    for r in conn.exec_driver_sql(
                        "WITH gone AS (DELETE FROM write_outcomes "
                        "WHERE id = ANY(%b::bigint[])) "
                        "SELECT id, body, mac FROM write_outcomes "
                        "WHERE id = ANY(%b::bigint[])",
                        (list(delivered), list(ids)),
                    ).all()
                ]
        except DRIVER_ERRORS as e:
            self.count_failure("read")
            raise StorageUnavailable(f"outcomes not read: {safe_message(e)}") from e

    def _settle(self, conn: Connection, decided: Sequence[QueueRow]) -> None:
        """In the deciding transaction: store outcomes, unqueue their rows, notify."""
        ids = [d[0] for d in decided]
        conn.exec_driver_sql(
            "INSERT INTO write_outcomes (id, body, mac) SELECT * FROM "
            "unnest(%b::bigint[], %b::bytea[], %b::bytea[]) ON CONFLICT DO NOTHING",
            (ids, [d[1] for d in decided], [d[2] for d in decided]),
        )
        conn.exec_driver_sql(
            "DELETE FROM write_queue WHERE id = ANY(%b::bigint[])", (ids,)
        )
        # Outcomes nobody took are swept now and then, not in every commit.
        now = time.monotonic()
        if now - self._swept >= OUTCOME_SWEEP_S:
            conn.exec_driver_sql(
                "DELETE FROM write_outcomes WHERE decided_at < clock_timestamp() "
                "- make_interval(secs => %s)",
                (OUTCOME_KEPT_S,),
            )
            self._swept = now
        conn.exec_driver_sql(f"NOTIFY {DONE_CHANNEL}")

    def listener(self, channel: str) -> Listener:
        """A connection of its own that waits for ``NOTIFY channel``."""
        self._needs_postgresql()
        return Listener(self._engine, channel)


class Listener:
    """Waits for notifications on one channel; reconnects after a failure."""

    def __init__(self, engine: Engine, channel: str) -> None:
        self._engine = engine
        self._channel = channel
        self._conn: object | None = None
        self._failing = False

    def _connected(self) -> object:
        if self._conn is None:
            raw = self._engine.raw_connection()
            conn = raw.driver_connection
            raw.detach()  # its own session for good, never back to the pool
            conn.autocommit = True  # type: ignore[union-attr]
            conn.execute(f"LISTEN {self._channel}")  # type: ignore[union-attr]
            self._conn = conn
        return self._conn

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` s for a notification; True if one came.

        Also True after a failure (the caller looks, since one may be lost).
        """
        try:
            conn = self._connected()
            self._failing = False
            for _ in conn.notifies(timeout=timeout, stop_after=1):  # type: ignore[attr-defined]
                return True
            return False
        except Exception as e:
            if not self._failing:  # once per outage, not once per retry
                log.warning(
                    "waiting for %s failed (polling until it works again): %s",
                    self._channel,
                    safe_message(e),
                )
            self._failing = True
            self.close()
            time.sleep(min(timeout, 0.5))  # no busy loop while the database is down
            return True

    def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a dead connection
                conn.close()  # type: ignore[attr-defined]
