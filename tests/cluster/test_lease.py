"""The sequencer lease and its fencing token, on a real PostgreSQL.

Two storages on one database play two processes. Whoever does not hold the
current token commits nothing: not after a takeover, not after its own lease
ran out and another took it, not with no lease at all; and a holder stopped in
the middle of its commit's transaction keeps the others waiting only as long
as the lease runs.
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from ledger.errors import LeaseLost, WriterLockHeld
from ledger.ledger import Ledger
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN, FixedClock, create_log


@pytest.fixture
def url(pg_cluster, signer):
    url = pg_cluster.new_database()
    create_log(url, signer).close()
    return url


def _storage(url: str, ttl: float = 5.0) -> SqlStorage:
    storage = SqlStorage.open(url)
    storage.lease_ttl = ttl
    return storage


def test_one_holder_at_a_time_and_every_takeover_raises_the_token(url):
    a, b = _storage(url, ttl=0.6), _storage(url, ttl=0.6)
    try:
        first = a.take_lease()
        assert first is not None
        assert b.take_lease() is None  # held, not run out
        assert a.renew_lease() is True
        state = a.lease_state()
        assert state is not None
        assert (state.token, state.holder) == (first, a.lease_holder)
        time.sleep(0.8)  # a stops renewing; the lease runs out
        second = b.take_lease()
        assert second == first + 1
        assert a.renew_lease() is False  # taken over: a knows it now
        assert a.fence is None
        assert a.take_lease() is None  # b holds it
        b.drop_lease()  # given up: taken at once, without waiting it out
        third = a.take_lease()
        assert third == second + 1
    finally:
        a.close()
        b.close()


def test_a_writer_that_lost_its_lease_commits_nothing(url, signer):
    a, b = _storage(url, ttl=0.6), _storage(url, ttl=0.6)
    old = Ledger.of_entries(a, signer, signer.verifier_key, ORIGIN, clock=FixedClock())
    old.start()
    try:
        assert old.append(b"before", timeout=30).index == 0
        paused = a.fence
        a._fence = None  # its renewer sees no lease and stops, as if paused
        time.sleep(0.5)
        a._fence = paused  # it will wake up believing it still holds it
        time.sleep(0.5)  # meanwhile the lease runs out
        # While paused past its lease, another takes over and writes.
        assert b.take_lease() is not None
        new = Ledger.of_entries(
            b, signer, signer.verifier_key, ORIGIN, clock=FixedClock()
        )
        new.start()
        new.append(b"by the new sequencer", timeout=30)
        # The old one wakes up: its commit is fenced off, and it stops.
        with pytest.raises(LeaseLost, match="taken over"):
            old.append(b"from the past", timeout=30)
        with pytest.raises(LeaseLost):
            old.append(b"and again", timeout=30)
        assert new.append(b"after", timeout=30).index == 2
        entries = [r.data for r in b.read_entries(0, 10)]
        assert entries == [b"before", b"by the new sequencer", b"after"]
        new.close()
    finally:
        old.close()
        a.close()
        b.close()


def test_a_second_writer_is_refused_while_the_first_renews(url, signer):
    a, b = _storage(url, ttl=0.6), _storage(url, ttl=0.6)
    first = Ledger.of_entries(
        a, signer, signer.verifier_key, ORIGIN, clock=FixedClock()
    )
    first.start()
    try:
        time.sleep(1.5)  # over two lease times, idle: its renewals keep it
        second = Ledger.of_entries(
            b, signer, signer.verifier_key, ORIGIN, clock=FixedClock()
        )
        with pytest.raises(WriterLockHeld, match="another sequencer holds"):
            second.start()
        assert first.append(b"still the writer", timeout=30).index == 0
    finally:
        first.close()
        a.close()
        b.close()


def test_no_lease_no_commit(url):
    storage = _storage(url)
    try:
        with pytest.raises(LeaseLost, match="holds no sequencer lease"):
            storage.settle_queue([(1, b"{}", bytes(32))])
    finally:
        storage.close()


def test_a_holder_stopped_inside_its_commit_blocks_a_takeover_only_until_the_lease_time(
    url,
):
    a, b = _storage(url, ttl=1.0), _storage(url, ttl=1.0)
    try:
        assert a.take_lease() is not None
        # a begins a commit (fence checked, the lease row locked) and stops
        # there, as a process under SIGSTOP would.
        conn = a.engine.connect()
        a._check_fence(conn)
        started = time.monotonic()
        took = None
        while took is None and time.monotonic() - started < 15:
            took = b.take_lease()
            if took is None:
                time.sleep(0.1)
        waited = time.monotonic() - started
        assert took is not None, "the stopped holder kept its row lock for good"
        # The database ended a's session: its commit cannot go through.
        with pytest.raises(sa.exc.DBAPIError, match="idle-in-transaction timeout"):
            conn.exec_driver_sql("SELECT 1")
        assert waited >= 0.5
        conn.invalidate()
        conn.close()
    finally:
        a.close()
        b.close()


def test_renewals_in_flight_do_not_make_a_takeover_wait_for_ever(url):
    """A renewal that finds the row locked says 'not known', not 'lost'."""
    a, b = _storage(url, ttl=3.0), _storage(url, ttl=3.0)
    try:
        assert a.take_lease() is not None
        conn = a.engine.connect()
        a._check_fence(conn)  # a commit of a's in flight holds the row
        answers: list[bool | None] = []
        worker = threading.Thread(target=lambda: answers.append(a.renew_lease()))
        worker.start()
        worker.join(timeout=10)
        assert answers == [None]
        assert a.fence is not None  # not given up on a lock wait
        conn.commit()
        conn.close()
        assert a.renew_lease() is True
        assert b.take_lease() is None
    finally:
        a.close()
        b.close()


def test_the_lease_of_a_process_that_died_is_taken_before_it_runs_out(url):
    """Its session, and the session lock of its term, die with it: the lease
    is taken once it has gone unrenewed for half its time, not all of it. A
    live holder's lease is never taken so."""
    a, b = _storage(url, ttl=8.0), _storage(url, ttl=8.0)
    try:
        first = a.take_lease()
        assert first is not None
        assert b.take_lease() is None  # alive
        a._lock_conn.invalidate()  # the process dies: its sessions end
        a._lock_conn = None
        died = time.monotonic()
        assert b.take_lease() is None  # renewed a moment ago: maybe a restart
        while b.take_lease() is None:
            assert time.monotonic() - died < 8, "waited the whole lease out"
            time.sleep(0.1)
        assert b.fence == first + 1
        assert 4 <= time.monotonic() - died < 8
        assert a.take_lease() is None  # b is alive and holds term first + 1
    finally:
        a.close()
        b.close()


def test_a_holder_whose_sessions_ended_keeps_its_lease_by_renewing(url):
    """A database restart ends every session, the holder's session lock
    with them: its next renewal takes that lock again, and the lease stays."""
    a, b = _storage(url, ttl=3.0), _storage(url, ttl=3.0)
    try:
        first = a.take_lease()
        assert first is not None
        a._lock_conn.invalidate()
        a._lock_conn = None
        assert a.renew_lease() is True
        time.sleep(2.0)  # quiet for longer than half the lease...
        assert a.renew_lease() is True  # ...but renewed, and its lock retaken
        assert b.take_lease() is None
        assert a.fence == first
    finally:
        a.close()
        b.close()
