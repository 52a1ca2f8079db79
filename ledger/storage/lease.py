"""The sequencer's lease on PostgreSQL, and the fencing token every commit checks.

One row (``sequencer_lease``, migration 0004) says which process integrates
now: its fencing token, raised by one at every takeover, and until when its
lease runs, in the database's own clock (``clock_timestamp()``), so no two
machines' clocks are ever compared. A process takes the lease only once it has
run out; the holder keeps it by renewing it, and every commit renews it too.

Safety does not rest on time. Each commit's transaction first updates the
lease row *where the token is still its own*; if another process took over,
no row matches and the transaction is rolled back before anything is signed
(``LeaseLost``). The row lock that update holds until commit orders every
commit against every takeover: a takeover waits for a commit in flight and
then finds the lease renewed. A holder paused in the middle of a transaction
(SIGSTOP, a stalled VM) cannot hold that lock for ever: the database ends a
session idle in a transaction after ``LEASE_TTL`` (``idle_in_transaction_
session_timeout``), and its commit fails when it wakes.

SQLite has no lease: one process opens it, under a lock file (``writes``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time

from sqlalchemy.engine import Connection

from ledger.errors import LeaseLost, StorageUnavailable
from ledger.storage.engine import DRIVER_ERRORS, SqlEngine, safe_message

__all__ = ["LEASE_TTL", "LeaseState", "SqlLease"]

# How long a lease runs without renewal (seconds): the longest a dead
# sequencer keeps the others from taking over.
LEASE_TTL = 5.0
# A takeover or renewal that waits longer than this for the lease row's lock
# gives up for now (a commit of the holder is in flight).
_LOCK_WAIT = "1s"
_LOCK_NOT_AVAILABLE = "55P03"
_SESSION_KEY = 0x53414B53  # "SAKS": the session locks' first key
_INT4 = 1 << 31


class LeaseState:
    """What the lease row says now (for status pages and messages)."""

    __slots__ = ("expires_in", "holder", "token")

    def __init__(self, token: int, holder: str, expires_in: float) -> None:
        self.token = token
        self.holder = holder
        self.expires_in = expires_in


def _holder_name() -> str:
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


def _lock_busy(error: Exception) -> bool:
    orig = getattr(error, "orig", None)
    return getattr(orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE


class SqlLease(SqlEngine):
    """Take, renew and give up the sequencer lease; fence a commit with it."""

    # This process's name in the lease row, and the token it holds (None:
    # it holds no lease).
    lease_holder: str = ""
    lease_ttl: float = LEASE_TTL
    _fence: int | None = None
    _lock_conn: Connection | None = None

    @property
    def fence(self) -> int | None:
        """The fencing token this process holds, or None."""
        return self._fence

    def take_lease(self) -> int | None:
        """Take the lease if its holder is gone or it ran out; the new token.

        Returns None while another process holds it.

        The holder of token T holds the session lock (K, T) for as long as its
        session lives; it takes (K, T + 1) *before* it moves the row to T + 1,
        so whoever finds (K, T) free knows no live session holds that term: its
        process died, and the lease is taken at once instead of waited out.
        Safety never rests on this (the token does that); it only spares a
        takeover the wait.

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        if not self.lease_holder:
            self.lease_holder = _holder_name()
        try:
            with self._connect() as conn:
                token, holder, expired, quiet = conn.exec_driver_sql(
                    "SELECT token, holder, expires_at < clock_timestamp(), "
                    "expires_at < clock_timestamp() + make_interval(secs => %s) "
                    "FROM sequencer_lease WHERE id = 1",
                    (self.lease_ttl / 2,),
                ).one()
                conn.commit()
            token = int(token)
            mine = holder == self.lease_holder
            # Quiet: not renewed for half its time (a live holder renews
            # every third of it at most), so a database restart that ended
            # the holder's sessions does not hand its lease to another.
            if not (expired or mine or (quiet and self._term_free(token))):
                return None
            if not self._claim(token + 1):
                return None  # another process is claiming the next term
            with self._engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_LOCK_WAIT}'")
                taken = conn.exec_driver_sql(
                    "UPDATE sequencer_lease SET token = token + 1, holder = %s, "
                    "expires_at = clock_timestamp() + make_interval(secs => %s) "
                    "WHERE id = 1 AND token = %s RETURNING token",
                    (self.lease_holder, self.lease_ttl, token),
                ).scalar()
        except DRIVER_ERRORS as e:
            self._close_lock_conn()
            if _lock_busy(e):
                return None
            raise StorageUnavailable(
                f"cannot take the sequencer lease: {safe_message(e)}"
            ) from e
        if taken is None:
            self._close_lock_conn()
            return None
        self._fence = int(taken)
        return self._fence

    def _term_free(self, token: int) -> bool:
        """True if no live session holds term ``token``'s session lock."""
        with self._connect() as conn:
            free = bool(
                conn.exec_driver_sql(
                    "SELECT pg_try_advisory_lock(%s, %s)",
                    (_SESSION_KEY, token % _INT4),
                ).scalar()
            )
            if free:
                conn.exec_driver_sql(
                    "SELECT pg_advisory_unlock(%s, %s)", (_SESSION_KEY, token % _INT4)
                )
            conn.commit()
        return free

    def _claim(self, token: int) -> bool:
        """Hold term ``token``'s session lock on a connection of its own."""
        self._close_lock_conn()
        conn = self._engine.connect()
        try:
            got = bool(
                conn.exec_driver_sql(
                    "SELECT pg_try_advisory_lock(%s, %s)",
                    (_SESSION_KEY, token % _INT4),
                ).scalar()
            )
            conn.commit()
        except BaseException:
            with contextlib.suppress(*DRIVER_ERRORS):
                conn.invalidate()
                conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._lock_conn = conn
        return True

    def _holding_term(self) -> bool:
        """True while the session that holds this term's lock is alive."""
        conn = self._lock_conn
        if conn is None:
            return False
        try:
            conn.exec_driver_sql("SELECT 1").scalar()
            conn.commit()
        except DRIVER_ERRORS:
            self._close_lock_conn()
            return False
        return True

    def _close_lock_conn(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is None:
            return
        # Returned to the pool it would keep the lock: drop the session.
        with contextlib.suppress(*DRIVER_ERRORS):
            conn.exec_driver_sql("SELECT pg_advisory_unlock_all()")
        with contextlib.suppress(*DRIVER_ERRORS):
            conn.invalidate()
            conn.close()

    def renew_lease(self) -> bool | None:
        """Extend the lease this process holds: True, False if it was taken over.

        None when the answer is not known yet (the row is locked by a commit
        in flight, or the database cannot be reached): ask again.
        """
        token = self._fence
        if token is None:
            return False
        if not self._holding_term():
            with contextlib.suppress(*DRIVER_ERRORS):
                self._claim(token)  # the database restarted: take it again
        try:
            with self._engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_LOCK_WAIT}'")
                moved = conn.exec_driver_sql(
                    "UPDATE sequencer_lease SET expires_at = clock_timestamp() "
                    "+ make_interval(secs => %s) WHERE id = 1 AND token = %s",
                    (self.lease_ttl, token),
                ).rowcount
        except DRIVER_ERRORS:
            return None
        if moved != 1:
            self._fence = None
            self._close_lock_conn()
            return False
        return True

    def drop_lease(self) -> None:
        """Give the lease up at once, so another process need not wait it out."""
        token, self._fence = self._fence, None
        self._close_lock_conn()
        if token is None:
            return
        try:
            with self._engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_LOCK_WAIT}'")
                conn.exec_driver_sql(
                    "UPDATE sequencer_lease SET expires_at = "
                    "'1970-01-01 00:00:00+00' WHERE id = 1 AND token = %s",
                    (token,),
                )
        except DRIVER_ERRORS:
            pass  # it runs out by itself

    def keep_renewing(self) -> None:
        """Renew the lease held now every third of its time, in the background.

        For a process that holds it as the only writer (``acquire_writer_lock``):
        its lease does not run out while it is idle. Stops by itself once the
        lease is given up or lost.
        """
        token = self._fence
        if token is None:
            return

        def renew() -> None:
            while self._fence == token:
                time.sleep(self.lease_ttl / 3)
                if self._fence != token:
                    return
                self.renew_lease()

        threading.Thread(target=renew, name="saksi-lease", daemon=True).start()

    def lease_state(self) -> LeaseState | None:
        """The lease row now (None on SQLite, which has none).

        Raises:
            StorageUnavailable: the database cannot be read.
        """
        if self.dialect != "postgresql":
            return None
        with self._connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT token, holder, EXTRACT(EPOCH FROM expires_at - "
                "clock_timestamp()) FROM sequencer_lease WHERE id = 1"
            ).one()
        return LeaseState(int(row[0]), str(row[1]), float(row[2]))

    def _check_fence(self, conn: Connection) -> None:
        """First statement of every write of a lease holder: is the token ours?

        Renews the lease and locks its row until the transaction ends.

        Raises:
            LeaseLost: another process holds the lease (roll back).
        """
        token = self._fence
        if token is None:
            if self.dialect == "postgresql":
                raise LeaseLost(
                    "this process holds no sequencer lease: nothing was committed"
                )
            return
        # A holder stopped in the middle of this transaction would keep the
        # row locked, and every takeover waiting, for as long as it sleeps:
        # its idle time in the transaction is bounded (SET LOCAL, set in the
        # same statement, one round trip less on every commit).
        moved = conn.exec_driver_sql(
            "UPDATE sequencer_lease SET expires_at = clock_timestamp() "
            "+ make_interval(secs => %s) WHERE id = 1 AND token = %s "
            "RETURNING set_config('idle_in_transaction_session_timeout', %s, true)",
            (self.lease_ttl, token, str(int(self.lease_ttl * 1000))),
        ).rowcount
        if moved != 1:
            self._fence = None
            self._close_lock_conn()
            raise LeaseLost(
                f"this process's sequencer lease (token {token}) was taken over "
                "by another process: nothing was committed"
            )
