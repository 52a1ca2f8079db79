"""The write queue between a cluster's members: what the database can and
cannot make the sequencer or a member do.

Rows are MACed under a key derived from the log key: a row anybody else
inserts or edits is refused and logs nothing; an outcome edited, or moved to
another row, is never answered with.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from keys import Ed25519Signer
from ledger.admission import Submission, prepare_submission
from ledger.cluster import ClusterLog, QueueClient, QueueCodec, derive_queue_key
from ledger.errors import (
    IntegrityFailure,
    Pushback,
    Refused,
    StaleRevision,
    StorageUnavailable,
    WrongPrev,
)
from ledger.storage.sql import SqlStorage
from tests.cluster.members import grant_envelope
from tests.conftest import ORIGIN, create_log


def _codec(signer) -> QueueCodec:
    return QueueCodec(derive_queue_key(signer, ORIGIN))


def _submission(admin: Ed25519Signer, n: int = 1) -> Submission:
    """A grant signed by ``admin``, checked as a member checks it."""
    envelope = grant_envelope(admin, n)
    return prepare_submission(
        envelope,
        lambda keyid: admin.public_key if keyid == admin.keyid else None,
        dt.datetime.now(dt.UTC),
    )


def test_the_queue_key_is_the_log_keys_own(signer):
    assert derive_queue_key(signer, ORIGIN) == derive_queue_key(signer, ORIGIN)
    assert derive_queue_key(signer, ORIGIN) != derive_queue_key(signer, "other/log")
    other = Ed25519Signer.generate(ORIGIN)
    assert derive_queue_key(other, ORIGIN) != derive_queue_key(signer, ORIGIN)


def test_a_queue_row_without_the_cluster_mac_is_refused(signer):
    codec = _codec(signer)
    admin = Ed25519Signer.generate("admin")
    submission = _submission(admin)
    body, mac = codec.submission(submission)
    restored = codec.restore(body, mac)
    assert restored.payload_hash == submission.payload_hash
    assert restored.signers == submission.signers == (admin.keyid,)
    assert restored.record == submission.record
    with pytest.raises(IntegrityFailure, match="valid MAC"):
        codec.restore(body, bytes(32))
    with pytest.raises(IntegrityFailure, match="valid MAC"):
        codec.restore(body.replace(b'"signers":[', b'"signers":["x",'), mac)
    forged = _codec(Ed25519Signer.generate(ORIGIN)).submission(_submission(admin))
    with pytest.raises(IntegrityFailure, match="valid MAC"):
        codec.restore(*forged)


def test_an_outcome_is_bound_to_its_row_and_read_back_exactly(signer):
    codec = _codec(signer)
    tag, body, mac = codec.outcome(7, 41, False, None)
    assert codec.read_outcome(tag, body, mac) == (41, False)
    assert codec.read_outcome(*codec.outcome(8, 3, True, None)) == (3, True)
    with pytest.raises(IntegrityFailure, match="valid MAC"):
        codec.read_outcome(8, body, mac)  # moved to another row
    with pytest.raises(IntegrityFailure, match="valid MAC"):
        codec.read_outcome(7, body.replace(b"41", b"42"), mac)
    stale = StaleRevision("revision 3 is taken", 3, "ab" * 32)
    with pytest.raises(Refused, match="revision 3 is taken") as err:
        codec.read_outcome(*codec.outcome(9, None, False, stale))
    assert err.value.cause == StaleRevision.cause
    assert (err.value.revision, err.value.payload_hash) == (3, "ab" * 32)
    wrong = WrongPrev("prev names no revision", None, None)
    with pytest.raises(Refused) as err:
        codec.read_outcome(*codec.outcome(12, None, False, wrong))
    assert (err.value.cause, err.value.revision) == (WrongPrev.cause, None)
    assert err.value.payload_hash is None
    busy = codec.outcome(10, None, False, Pushback("full", retry_after=2.0))
    with pytest.raises(Pushback) as pushed:
        codec.read_outcome(*busy)
    assert pushed.value.retry_after == 2.0
    bad = _codec(signer).outcome(11, -1, False, None)
    with pytest.raises(IntegrityFailure, match="names no entry"):
        codec.read_outcome(*bad)


def test_a_row_inserted_behind_the_cluster_logs_nothing(pg_cluster, signer):
    url = pg_cluster.new_database()
    create_log(url, signer).close()
    storage = SqlStorage.open(url)
    storage.migrate()
    member = ClusterLog(storage, signer, signer.verifier_key, ORIGIN)
    member.start()
    try:
        deadline = time.monotonic() + 30
        while not member.candidate.active:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        size = member.tree.refresh().size
        admin = Ed25519Signer.generate("admin")
        body, _ = member.codec.submission(_submission(admin))
        (tag,) = storage.enqueue([(body, b"\x00" * 32)])
        deadline = time.monotonic() + 30
        while storage.queue_length():
            assert time.monotonic() < deadline, "the forged row was never decided"
            time.sleep(0.05)
        (outcome,) = storage.take_outcomes([tag])
        with pytest.raises(Exception, match="not queued intact"):
            member.codec.read_outcome(*outcome)
        assert member.tree.refresh().size == size
    finally:
        member.close()


class _Unreadable:
    """The database, except that outcomes cannot be read (it is failing)."""

    def __init__(self, storage: SqlStorage) -> None:
        self._storage = storage

    def __getattr__(self, name: str):
        return getattr(self._storage, name)

    def take_outcomes(self, ids, delivered=()):
        raise StorageUnavailable("outcomes not read: connection refused")


def test_not_decided_while_the_database_fails_is_storage_unavailable(
    pg_cluster, signer
):
    """A write still undecided when its time is up is answered 503 either way
    (send it again); while the database fails, the answer says so, not that
    the log is busy (no sequencer runs here: nothing is ever decided)."""
    url = pg_cluster.new_database()
    create_log(url, signer).close()
    storage = SqlStorage.open(url)
    storage.migrate()
    codec = _codec(signer)
    admin = Ed25519Signer.generate("admin")
    try:
        for store, error in (
            (_Unreadable(storage), StorageUnavailable),
            (storage, Pushback),
        ):
            client = QueueClient(store, codec, timeout=1.0)  # type: ignore[arg-type]
            try:
                with pytest.raises(error, match="send it again") as raised:
                    asyncio.run(client.decide(_submission(admin)))
            finally:
                client.close()
            assert type(raised.value) is error
    finally:
        storage.close()
